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

import json
import uuid
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from aiguillage.dlq import Rejet
from aiguillage.domain import (
    NAMESPACE_SIGNALEMENT,
    Affectation,
    Source,
    Suivi,
    TypeSuivi,
    uuid5_texte,
)
from aiguillage.fhir.tache import tache
from aiguillage.routing.equipe import escalade, reorientation
from aiguillage.routing.messages import Escalade, Liberer, MessageEquipe, Nouveau, Reorienter

if TYPE_CHECKING:
    from aiguillage.routing.config_file import Moteur


class Statut(StrEnum):
    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


SOURCES_FHIR = frozenset({Source.SPST.value})  # their retours carry the FHIR Task too
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
    """A Retour record (Retour.v2): the state change only, never the free-text comment; for a
    partner that speaks FHIR (the SPST), the same state as the Task ``/fhir/Task`` serves.

    ``cause`` (a suivi id, or the affectation's sequence) makes the id deterministic,
    so a replayed suivi gives the same Retour.
    """
    task = None
    if aff["source"] in SOURCES_FHIR:
        task = json.dumps(tache(signalement_id=aff["signalement_id"], source_ref=aff["source_ref"], statut=statut.value,
                                equipe=aff.get("equipe"), file=aff.get("file"), change_le=quand, issue=issue),
                          ensure_ascii=False, separators=(",", ":"))
    return {
        "retour_id": uuid5_texte(NAMESPACE_SIGNALEMENT, f"retour:{aff['signalement_id']}:{cause}:{statut.value}"),
        "signalement_id": aff["signalement_id"],
        "source": aff["source"],
        "source_ref": aff["source_ref"],
        "statut": statut.value,
        "statut_precedent": precedent.value if precedent else None,
        "issue": issue,
        "change_le": quand,
        "fhir_task": task,
    }


# -- the life-cycle agent's decisions, pure ---------------------------------------------------
#
# State: ``cycles[signalement_id]``, a JSON entry: its status, what the life cycle keeps of its
# latest Affectation, the suivi ids applied (resends), suivis that came before the first
# Affectation, the deadline already escalated, and the figures' dossier ("ag", not read here).

SUIVIS_GARDES = 50  # suivi ids remembered per signalement, for resends
PURGE_APRES = timedelta(days=90)  # a closed signalement's entry is forgotten this long after its closure
EN_ATTENTE_DE_CONTACT = (Statut.REQUESTED.value, Statut.RECEIVED.value)  # before a first contact

# What the life cycle keeps of an Affectation a team holds (the team keeps the rest): the
# retours' fields, the sequence, the team, the file (in a named queue a FHIR Task is on-hold)
# and the first-contact date. A team-less one is kept whole: the life cycle then numbers its decisions. Measured with `aiguillage bench` (30,000
# signalements left open): peak RSS 378-393 MB -> 317 MB.
GARDE = ("signalement_id", "source", "source_ref", "sequence", "equipe", "file", "echeance_premier_contact")


@dataclass(frozen=True)
class PublierRetour:
    source: str
    retour: dict[str, Any]


@dataclass(frozen=True)
class DireEquipe:
    equipe: str
    message: MessageEquipe


@dataclass(frozen=True)
class EmettreAffectation:
    aff: Affectation


SortieCycle = PublierRetour | DireEquipe | EmettreAffectation


@dataclass
class Issue:
    """A decision of the life cycle: the entry to write (None: unchanged; ``purger``: forget it,
    its figures archived), what to send, and the suivis it accepted (the figures count those
    only) or the reason it refused one."""

    entree: dict[str, Any] | None = None
    sorties: list[SortieCycle] = field(default_factory=list)
    acceptes: list[Suivi] = field(default_factory=list)
    rejet: Rejet | None = None
    purger: bool = False


def ce_qui_reste(aff: Affectation) -> dict[str, Any]:
    d = aff.model_dump(mode="json")
    return d if aff.equipe is None else {k: d[k] for k in GARDE}


def _retour(aff: dict[str, Any], statut: Statut, avant: Statut | None, cause: str, quand: datetime,
            issue: str | None = None) -> PublierRetour:
    return PublierRetour(aff["source"], retour(aff, statut, avant, cause, quand, issue))


def sur_affectation(entree: dict[str, Any] | None, aff: Affectation, equipes: Container[str], version: str,
                    maintenant: datetime) -> Issue:
    """A decision on a signalement: its first one makes it ``requested``; an older or repeated
    one changes nothing; suivis kept while it had none are applied now."""
    if entree and entree.get("aff") and entree["aff"]["sequence"] >= aff.sequence:
        return Issue()
    nouveau = not entree or entree.get("statut") is None
    c: dict[str, Any] = {"suivis": [], **(entree or {})}
    en_attente = c.pop("en_attente", [])
    c["aff"] = ce_qui_reste(aff)
    out = Issue()
    if nouveau:
        c["statut"] = Statut.REQUESTED.value
        out.sorties.append(_retour(c["aff"], Statut.REQUESTED, None, f"aff{aff.sequence}", aff.decide_le))
    for kept in en_attente:  # what came before this signalement's first decision
        suite = sur_suivi(c, Suivi.model_validate(kept), equipes, version, maintenant)
        if suite.entree is not None:
            c = suite.entree
        out.sorties += suite.sorties
        out.acceptes += suite.acceptes
    out.entree = c
    return out


def sur_suivi(entree: dict[str, Any] | None, suivi: Suivi, equipes: Container[str], version: str,
              maintenant: datetime) -> Issue:
    """A caseworker-side event: the transition, its retour and its effect on the team; refused
    (``rejet``) when impossible; kept for later when the signalement has no decision yet."""
    sid = suivi.signalement_id
    assert sid is not None
    if not entree or entree.get("statut") is None:
        c = {"suivis": [], **(entree or {})}
        kept = suivi.model_dump(mode="json", exclude={"commentaire"})  # free text stays out of changelogs
        c["en_attente"] = [*c.get("en_attente", []), kept][-SUIVIS_GARDES:]
        return Issue(entree=c)
    if suivi.suivi_id in entree["suivis"]:
        return Issue()  # a resend
    avant = Statut(entree["statut"])
    try:
        apres = transition(avant, suivi)
    except TransitionImpossible as exc:
        return Issue(rejet=Rejet("transition-impossible", str(exc), ({"field": "type", "problem": str(exc)},)))
    vers = suivi.reorientation_vers or ""
    if vers.startswith("equipe:") and vers[7:] not in equipes:
        return Issue(rejet=Rejet("equipe-inconnue", "reorientation_vers: no such team in the routing configuration",
                                 ({"field": "reorientation_vers", "problem": "expected equipe:<id> of a configured team"},)))
    aff = entree["aff"]
    out = Issue(entree={**entree, "statut": apres.value, "suivis": [*entree["suivis"], suivi.suivi_id][-SUIVIS_GARDES:]},
                acceptes=[suivi])
    if apres in TERMINAUX and out.entree is not None:
        out.entree["clos_le"] = maintenant.date().isoformat()
    if apres != avant or suivi.type is T.REORIENTATION:
        out.sorties.append(_retour(aff, apres, avant, suivi.suivi_id, suivi.survenu_le, issue_de(suivi)))
    equipe = aff.get("equipe")
    if apres in TERMINAUX:
        if equipe:
            out.sorties.append(DireEquipe(equipe, Liberer(sid=sid)))
    elif suivi.type is T.REORIENTATION:
        if equipe:
            out.sorties.append(DireEquipe(equipe, Reorienter(sid=sid, vers=vers, suivi_id=suivi.suivi_id,
                                                             quand=suivi.survenu_le, assistant=suivi.assistant)))
        else:  # no team held it: the life cycle numbers its decisions
            nouvelle = reorientation(Affectation.model_validate(aff), vers, suivi.survenu_le, version, suivi.assistant,
                                     maintenant)
            if nouvelle.equipe is not None:
                out.sorties.append(DireEquipe(nouvelle.equipe, Nouveau(
                    aff=nouvelle, placer=True, territoire=nouvelle.equipe, reorientation=suivi.suivi_id)))
    return out


def echeance_a_surveiller(entree: dict[str, Any] | None) -> str | None:
    """The first-contact date to watch for an entry: None when no contact is awaited or this
    deadline's breach was already handled."""
    if not entree or entree.get("statut") not in EN_ATTENTE_DE_CONTACT or not entree.get("aff"):
        return None
    echeance = entree["aff"].get("echeance_premier_contact")
    return None if not echeance or entree.get("escalade_pour") == echeance else echeance


def sur_echeance(entree: dict[str, Any] | None, echeance: str, moteur: Moteur, maintenant: datetime) -> Issue:
    """A first-contact deadline check: one escalation per breach, asked of the team that holds it."""
    if echeance_a_surveiller(entree) != echeance:
        return Issue()  # contacted meanwhile, the deadline moved (escalated), or already handled
    assert entree is not None
    aff, sid = entree["aff"], entree["aff"]["signalement_id"]
    out = Issue(entree={**entree, "escalade_pour": echeance})
    if aff.get("equipe"):
        out.sorties.append(DireEquipe(aff["equipe"], Escalade(sid=sid, echeance=date.fromisoformat(echeance))))
    else:
        out.sorties.append(EmettreAffectation(escalade(Affectation.model_validate(aff), moteur, maintenant)))
    return out


def a_purger(entree: dict[str, Any] | None, grace: timedelta = PURGE_APRES) -> str | None:
    """The day a closed signalement's entry may be forgotten (``PURGE_APRES`` after its closure,
    or after its first-contact date for an entry closed before closures were dated); None while
    it is open."""
    if not entree or entree.get("statut") not in {s.value for s in TERMINAUX}:
        return None
    depuis = entree.get("clos_le") or (entree.get("aff") or {}).get("echeance_premier_contact")
    return (date.fromisoformat(depuis) + grace).isoformat() if depuis else None


def sur_purge(entree: dict[str, Any] | None, jour: str, aujourd_hui: date, grace: timedelta = PURGE_APRES) -> Issue:
    """A purge request: the entry goes if it is still closed and due (a late suivi reopens nothing,
    but a resend within the grace period finds it)."""
    due = a_purger(entree, grace)
    return Issue(purger=due is not None and due == jour and date.fromisoformat(due) <= aujourd_hui)
