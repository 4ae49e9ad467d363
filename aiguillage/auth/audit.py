"""The audit trail: every read of personal rows and every change, appended to topic ``audit``
(schema ``Audit``; the sink ``audit`` writes table ``audit``; ``aiguillage audit`` lists it).

A record holds who (the token's ``sub``), their habilitations, a fixed action code, the ids of
the signalements concerned and a team, file or token id: ids and codes only. Nothing a caller
typed freely reaches it, so no NIR and no comment can: the action is an enum, the object ids are
checked against the shape of an id.
"""

from __future__ import annotations

import getpass
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aiguillage import topics
from aiguillage.auth.droits import Personne
from aiguillage.kafka import Publieur

_ID = re.compile(r"^[\w.:-]{1,100}$")


class Action(StrEnum):
    LIRE_FILES = "lire-files"
    LIRE_FILE = "lire-file"
    LIRE_CHARGES = "lire-charges"
    SUIVI = "suivi"
    REAFFECTATION = "reaffectation"
    DLQ_REJEU = "dlq-rejeu"
    JETON_AJOUT = "jeton-ajout"
    JETON_REVOCATION = "jeton-revocation"


def _objet(valeur: str | None) -> str | None:
    """An id as it is, anything else (which could be free text) as None: the trail keeps no text."""
    return valeur if valeur is not None and _ID.match(valeur) else None


def enregistrement(qui: str, role: str, action: Action, signalements: Iterable[str] = (),
                   equipe: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    ids = sorted({str(uuid.UUID(s)) for s in signalements})  # a signalement id is a UUID, nothing else
    return {
        "audit_id": str(uuid.uuid4()), "qui": _objet(qui) or "inconnu", "role": role, "action": Action(action).value,
        "signalements": ids, "equipe": _objet(equipe), "at": at or datetime.now(UTC),
    }


def operateur() -> str:
    """Who runs a CLI command: the operating-system account (the CLI has no OIDC token)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli:inconnu"


class Journal:
    """Publishes audit records; a read is answered only once its record is acknowledged."""

    def __init__(self, publieur: Publieur) -> None:
        self.publieur = publieur

    async def noter(self, p: Personne, action: Action, signalements: Iterable[str] = (),
                    equipe: str | None = None) -> None:
        await self.ecrire(enregistrement(p.sub, p.role, action, signalements, equipe))

    async def ecrire(self, record: dict[str, Any]) -> None:
        # durable: on the embedded broker the record is in the outbox before the answer, like the
        # suivi it traces (a crash loses neither); on Kafka the acknowledgement is the promise.
        await self.publieur.send(topics.AUDIT, "Audit", record, key=record["audit_id"].encode(), durable=True)
