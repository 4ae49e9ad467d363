"""A partner's referral as a FHIR R4 ``Task``, from what the hub knows of it: pure.

Statuses follow the referral states of the HL7 SDOH Clinical Care guide ("Gravity"), from the
hub's life cycle (:mod:`aiguillage.routing.cycle`):

=====================  =========================  =========================================
hub                    Task.status                why
=====================  =========================  =========================================
requested              requested                  routed to a caseworker queue, not yet read
requested, named file  on-hold + statusReason     a queue no caseworker is given from: the
                                                  consent to collect, outside the territories
received               received                   the team has it
accepted               accepted                   prise en charge
in-progress            in-progress                entretien, préconisation
completed              completed + businessStatus clôture (its outcome code), or réorientation
                                                  to another partner
rejected               rejected + statusReason    refus
cancelled              cancelled + statusReason   annulation
=====================  =========================  =========================================

``failed`` is a guide state no hub event leads to yet. ``owner`` is the service social team
(an Organization by its identifier), never a caseworker; no free text is ever put in a Task.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

SYSTEME_SIGNALEMENT = "urn:aiguillage:signalement"
SYSTEME_EQUIPE = "https://aiguillage.example/fhir/NamingSystem/equipe"
SYSTEME_RAISON = "https://aiguillage.example/fhir/CodeSystem/raison-statut"
SYSTEME_ISSUE = "https://aiguillage.example/fhir/CodeSystem/issue-accompagnement"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"

# statusReason: a code and its fixed wording (never the caseworker's words)
RAISONS = {
    "consentement-a-recueillir": "Le consentement de l’assuré est à recueillir avant tout contact",
    "hors-territoire": "Hors du territoire des équipes : le signalement est à réorienter",
    "file-dediee": "En attente dans une file dédiée, sans attribution",
    "refus": "Signalement refusé par le service social",
    "annulation": "Signalement annulé",
}
_STATUTS = {"requested", "received", "accepted", "in-progress", "completed", "rejected", "cancelled",
            "on-hold", "failed"}
_AXES = ("PDP", "SPS")


def _attente(file: str | None, equipe: str | None) -> str | None:
    """The reason a requested signalement waits in a queue no caseworker is given from, or None."""
    if equipe is None:
        return "hors-territoire"
    if file is None or file in {f"{equipe}-{axe}" for axe in _AXES}:
        return None  # the team's own queue: a caseworker is (or will be) given
    return "consentement-a-recueillir" if "consentement" in file else "file-dediee"


def _instant(quand: datetime) -> str:
    quand = quand.replace(tzinfo=UTC) if quand.tzinfo is None else quand.astimezone(UTC)
    return quand.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def statut_fhir(statut: str, file: str | None, equipe: str | None) -> tuple[str, str | None]:
    """The Task status and the statusReason code of a hub status."""
    if statut in ("requested", "received"):
        attente = _attente(file, equipe)
        if attente is not None:
            return "on-hold", attente
    if statut == "rejected":
        return statut, "refus"
    if statut == "cancelled":
        return statut, "annulation"
    if statut not in _STATUTS:
        raise ValueError(f"statut: {statut!r} is not a hub status")
    return statut, None


def tache(*, signalement_id: str, source_ref: str, statut: str, equipe: str | None, file: str | None,
          change_le: datetime, issue: str | None = None) -> dict[str, Any]:
    """The Task JSON of one signalement. Plain dicts: the worker builds one per SPST retour and
    need not load the FHIR models (0.75 s at start, a validation per record); the tests check
    every shape it makes against ``fhir.resources``' R4B Task."""
    status, raison = statut_fhir(statut, file, equipe)
    demande = {"reference": f"ServiceRequest/{source_ref}", "type": "ServiceRequest",
               "identifier": {"value": source_ref}}
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": signalement_id,
        "identifier": [{"system": SYSTEME_SIGNALEMENT, "value": signalement_id}],
        "basedOn": [demande],
        "focus": demande,
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "lastModified": _instant(change_le),
    }
    if raison is not None:
        task["statusReason"] = {"coding": [{"system": SYSTEME_RAISON, "code": raison}], "text": RAISONS[raison]}
    if issue is not None and status == "completed":
        task["businessStatus"] = {"coding": [{"system": SYSTEME_ISSUE, "code": issue}]}
    if equipe is not None:
        task["owner"] = {"type": "Organization", "identifier": {"system": SYSTEME_EQUIPE, "value": equipe},
                         "display": f"Service social de l’Assurance Maladie, équipe {equipe}"}
    return task
