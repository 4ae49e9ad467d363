"""The life of a signalement, as FHIR ``Task`` statuses driven by suivis.

::

    requested --reception--> received --prise-en-charge--> accepted --entretien|preconisation--> in-progress
        |  (prise-en-charge, refus, annulation, reorientation also from requested)       |
        +--> rejected (refus)   cancelled (annulation)   completed (cloture) <-------------+

A réorientation to another team or axe puts the signalement back to ``requested``
(a new Affectation, sequence + 1); to a partner, it ends it as ``completed`` with the
outcome ``reorientation-partenaire``. Terminal statuses accept nothing more.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from aiguillage.domain import NAMESPACE_SIGNALEMENT, Suivi, TypeSuivi


class Statut(StrEnum):
    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


TERMINAUX = frozenset({Statut.REJECTED, Statut.COMPLETED, Statut.CANCELLED})
T = TypeSuivi
S = Statut
TRANSITIONS: dict[Statut, dict[TypeSuivi, Statut]] = {
    S.REQUESTED: {T.RECEPTION: S.RECEIVED, T.PRISE_EN_CHARGE: S.ACCEPTED, T.REFUS: S.REJECTED,
                  T.ANNULATION: S.CANCELLED, T.REORIENTATION: S.REQUESTED},
    S.RECEIVED: {T.PRISE_EN_CHARGE: S.ACCEPTED, T.REFUS: S.REJECTED, T.ANNULATION: S.CANCELLED,
                 T.REORIENTATION: S.REQUESTED},
    S.ACCEPTED: {T.ENTRETIEN: S.IN_PROGRESS, T.PRECONISATION: S.IN_PROGRESS, T.CLOTURE: S.COMPLETED,
                 T.ANNULATION: S.CANCELLED, T.REORIENTATION: S.REQUESTED},
    S.IN_PROGRESS: {T.ENTRETIEN: S.IN_PROGRESS, T.PRECONISATION: S.IN_PROGRESS, T.CLOTURE: S.COMPLETED,
                    T.ANNULATION: S.CANCELLED, T.REORIENTATION: S.REQUESTED},
}


class TransitionImpossible(ValueError):
    def __init__(self, statut: Statut, type_suivi: TypeSuivi) -> None:
        permis = sorted(TRANSITIONS.get(statut, {}))
        attendu = ", ".join(permis) if permis else "nothing (the signalement is closed)"
        super().__init__(f"type: a suivi {type_suivi.value!r} is impossible in status {statut.value!r}; expected {attendu}")
        self.statut = statut
        self.type_suivi = type_suivi


def transition(statut: Statut, suivi: Suivi) -> Statut:
    """The status after ``suivi``; raise :class:`TransitionImpossible` when it cannot happen."""
    vers_partenaire = suivi.type is T.REORIENTATION and (suivi.reorientation_vers or "").startswith("partenaire:")
    if vers_partenaire and T.REORIENTATION in TRANSITIONS.get(statut, {}):
        return S.COMPLETED
    try:
        return TRANSITIONS[statut][suivi.type]
    except KeyError:
        raise TransitionImpossible(statut, suivi.type) from None


def issue_de(suivi: Suivi) -> str | None:
    if suivi.type is T.CLOTURE:
        return suivi.issue.value if suivi.issue else None
    if suivi.type is T.REORIENTATION and (suivi.reorientation_vers or "").startswith("partenaire:"):
        return "reorientation-partenaire"
    return None


def problemes_suivi(suivi: Suivi) -> list[dict[str, str]]:
    """Cross-field checks the schema cannot express; each names the field and what was expected."""
    out = []
    if suivi.type is T.ACTION_COLLECTIVE:
        if suivi.signalement_id is not None:
            out.append({"field": "signalement_id", "problem": "an action collective concerns no single signalement: expected null"})
    elif suivi.signalement_id is None:
        out.append({"field": "signalement_id", "problem": f"required for a suivi {suivi.type.value!r}"})
    else:
        try:
            uuid.UUID(suivi.signalement_id)
        except ValueError:
            out.append({"field": "signalement_id", "problem": "expected a UUID"})
    if suivi.type is T.CLOTURE and suivi.issue is None:
        out.append({"field": "issue", "problem": "required on a cloture: the outcome of the accompagnement"})
    if suivi.type is T.REORIENTATION and suivi.reorientation_vers is None:
        out.append({"field": "reorientation_vers", "problem": "required on a reorientation: axe:PDP|SPS, equipe:<id> or partenaire:<source>"})
    if suivi.type is T.ENTRETIEN and suivi.mode_entretien is None:
        out.append({"field": "mode_entretien", "problem": "required on an entretien: de-visu, telephone or visite-domicile"})
    return out


def retour(aff: dict[str, Any], statut: Statut, precedent: Statut | None, cause: str, quand: datetime,
           issue: str | None = None) -> dict[str, Any]:
    """A Retour record (Retour.v1): the state change only, never the free-text comment.

    ``cause`` (a suivi id, or the affectation's sequence) makes the id deterministic,
    so a replayed suivi gives the same Retour.
    """
    return {
        "retour_id": str(uuid.uuid5(NAMESPACE_SIGNALEMENT, f"retour:{aff['signalement_id']}:{cause}:{statut.value}")),
        "signalement_id": aff["signalement_id"],
        "source": aff["source"],
        "source_ref": aff["source_ref"],
        "statut": statut.value,
        "statut_precedent": precedent.value if precedent else None,
        "issue": issue,
        "change_le": quand,
    }
