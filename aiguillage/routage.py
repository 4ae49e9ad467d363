"""Kept for callers of the walking skeleton's ``affecter``: now the routing engine's stateless half.

The decision (rule, axe, priorité, team and file, due date, explanation) comes from
:mod:`aiguillage.routing` and the shipped ``routing.yaml``; the caseworker is chosen
by the team agent (``streams/equipes.py``), which holds the caseloads.
"""

from __future__ import annotations

from datetime import datetime

from aiguillage.domain import Affectation, Signalement
from aiguillage.routing import moteur_par_defaut
from aiguillage.routing.affectation import orienter


def affecter(s: Signalement, maintenant: datetime) -> Affectation:
    return orienter(moteur_par_defaut(), s, maintenant).affectation
