"""Choice of file and caseworker, with one readable French sentence per decision.

Two steps, because they need different state:

1. :func:`orienter` (no state): triage + territory -> team, file, axe, priorité,
   due date. Runs where the signalement arrives.
2. :func:`placer` (the team's caseloads): the caseworker of that team with the
   right skill and the most free capacity (ties: smallest id); when all are full,
   the team's overflow applies (a neighbour team, or waiting in the team's file).
   Runs where the team's state lives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiguillage.domain import Affectation, Axe, Signalement
from aiguillage.routing.config_file import ATTENTE, Assistant, Equipe, Moteur
from aiguillage.routing.triage import Tri, trier


@dataclass(frozen=True)
class Territoire:
    equipe: str | None
    raison: str


def choisir_equipe(m: Moteur, s: Signalement) -> Territoire:
    """Commune first, then postcode, then the département's fallback team."""
    dep = s.departement
    terr = m.config.territoires.get(dep)
    if terr is None:
        return Territoire(None, f"le département {dep} n’est dans aucun territoire configuré")
    if s.commune_insee:
        eq = m.par_commune.get(s.commune_insee.upper())
        if eq and m.departement_de_equipe[eq] == dep:
            return Territoire(eq, f"la commune de l’assuré relève de l’équipe {eq}")
    if s.code_postal:
        eq = m.par_code_postal.get(s.code_postal) or next(
            (e for p, e in m.par_prefixe if s.code_postal.startswith(p)), None
        )
        if eq and m.departement_de_equipe[eq] == dep:
            return Territoire(eq, f"le code postal de l’assuré relève de l’équipe {eq}")
    return Territoire(terr.equipe_par_defaut, f"équipe par défaut du département {dep} ({terr.nom})")


@dataclass(frozen=True)
class Orientation:
    """The stateless half of a decision: an Affectation without caseworker yet."""

    affectation: Affectation
    tri: Tri
    a_placer: bool  # False: a named queue (consent, unknown territory) that no caseworker is given from


def nom_file(equipe: str, axe: Axe) -> str:
    return f"{equipe}-{axe.value}"


def orienter(m: Moteur, s: Signalement, maintenant: datetime) -> Orientation:
    tri = trier(m, s)
    terr = choisir_equipe(m, s)
    a_placer = False
    if terr.equipe is None:
        file = m.config.file_hors_territoire
        suite = "file visible hors territoire, sans attribution"
    elif tri.file_speciale:
        file = tri.file_speciale.format(departement=s.departement, equipe=terr.equipe)
        suite = "file dédiée, sans attribution"
    else:
        file, a_placer = nom_file(terr.equipe, tri.axe), True
        suite = ""
    base = (
        f"Règle « {tri.regle} » (n° {tri.rang}, configuration {m.version}) : {tri.pourquoi}, "
        f"d’où l’axe {tri.axe.value}, la priorité {tri.priorite} et un premier contact sous {tri.delai_jours} jours ; "
        f"{terr.raison}"
    )
    aff = Affectation(
        signalement_id=s.signalement_id,
        source=s.source,
        source_ref=s.source_ref,
        nir_pseudonyme=s.nir_pseudonyme,
        recu_le=s.recu_le,
        departement=s.departement,
        file=file,
        equipe=terr.equipe,
        axe=tri.axe,
        priorite=tri.priorite,
        regle=tri.regle,
        config_version=m.version,
        explication=f"{base} ; {suite}." if suite else base,
        echeance_premier_contact=(s.recu_le + timedelta(days=tri.delai_jours)).date(),
        decide_le=maintenant,
        sexe=s.sexe,
        risque=s.risque,
        tranche_age=s.tranche_age_au(s.recu_le),
    )
    return Orientation(aff, tri, a_placer)


def choisir_assistant(equipe: Equipe, axe: Axe, charge: Callable[[str], int]) -> tuple[Assistant, int] | None:
    """The caseworker with skill ``axe`` and the most free capacity; ties go to the smallest id."""
    best: tuple[Assistant, int] | None = None
    for a in equipe.assistants:
        if axe not in a.competences:
            continue
        libre = a.capacite - charge(a.id)
        if libre <= 0:
            continue
        if best is None or libre > best[1] or (libre == best[1] and a.id < best[0].id):
            best = (a, libre)
    return best


@dataclass(frozen=True)
class Placement:
    """``assistant`` set: given to them. ``deborder_vers`` set: try that team. Else: waits in ``equipe``'s file."""

    equipe: str
    assistant: str | None = None
    deborder_vers: str | None = None
    raison: str = ""


def placer(m: Moteur, equipe_id: str, axe: Axe, charge: Callable[[str], int], deja_deborde: bool = False) -> Placement:
    equipe = m.equipes.get(equipe_id)
    if equipe is None:  # the team left the configuration since: its file keeps the signalement
        return Placement(equipe_id, raison=f"l’équipe {equipe_id} n’est plus configurée, le signalement attend dans sa file")
    choix = choisir_assistant(equipe, axe, charge)
    if choix is not None:
        a, libre = choix
        return Placement(equipe_id, a.id, raison=(
            f"confié à {a.id}, compétence {axe.value}, qui avait le plus de place ({libre} sur {a.capacite})"
        ))
    if not deja_deborde and equipe.debordement != ATTENTE:
        return Placement(equipe_id, deborder_vers=equipe.debordement, raison=(
            f"toute l’équipe {equipe_id} est à pleine capacité en {axe.value}, débordement vers {equipe.debordement}"
        ))
    return Placement(equipe_id, raison=f"toute l’équipe {equipe_id} est à pleine capacité en {axe.value}, le signalement attend dans la file")


def avec_placement(base: Affectation, placement: Placement, file: str | None = None, **changes: object) -> Affectation:
    """The final Affectation: the stateless decision plus the caseworker and why."""
    explication = base.explication.rstrip(".")
    return base.model_copy(update={
        "assistant": placement.assistant,
        "equipe": placement.equipe,
        "file": file or nom_file(placement.equipe, base.axe),
        "explication": f"{explication} ; {placement.raison}.",
        **changes,
    })
