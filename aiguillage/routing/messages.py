"""What the routing stages tell a team: one typed message per intent, on ``<app>-equipes``.

A pydantic discriminated union on ``kind``, JSON on the wire (the same shape the hub wrote
before these types, so a topic written by an older worker still reads). A message that does
not parse is a :class:`pydantic.ValidationError`, dead-lettered by the team agent.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from aiguillage.domain import Affectation


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Nouveau(_Message):
    """Place a signalement in this team (or follow the assuré's case, or overflow, or wait)."""

    kind: Literal["nouveau"] = "nouveau"
    aff: Affectation
    placer: bool = True  # False: a named queue (consent, …) where no caseworker is given
    territoire: str | None = None  # the team of the assuré's territory (this one may be their référent's)
    sauts: int = 0  # hops so far: transfers and territory, bounded
    deborde_de: str | None = None  # the full team it overflowed from
    raison_debordement: str | None = None
    reorientation: str | None = None  # the suivi_id of the réorientation that made it
    trace: str | None = None  # the signalement's W3C traceparent, when tracing is on (aiguillage/tracing.py)


class Attendre(_Message):
    """The neighbour was full too: wait in this (the territory's) file, unless room came meanwhile."""

    kind: Literal["attendre"] = "attendre"
    aff: Affectation
    raison: str


class Liberer(_Message):
    """The case ended: its caseworker has one case less, waiting work may be given."""

    kind: Literal["liberer"] = "liberer"
    sid: str


class Reorienter(_Message):
    """A caseworker sends the signalement to another axe or team (``axe:X`` or ``equipe:Y``)."""

    kind: Literal["reorienter"] = "reorienter"
    sid: str
    vers: str
    suivi_id: str
    quand: datetime
    assistant: str | None = None


class Escalade(_Message):
    """The first-contact deadline ``echeance`` passed without a contact: raise the priorité, once."""

    kind: Literal["escalade"] = "escalade"
    sid: str
    echeance: date


MessageEquipe = Annotated[Nouveau | Attendre | Liberer | Reorienter | Escalade, Field(discriminator="kind")]
_UN = TypeAdapter(MessageEquipe)
_PAQUET = TypeAdapter(list[tuple[str, MessageEquipe]])


def encoder(message: MessageEquipe) -> bytes:
    return message.model_dump_json(exclude_defaults=False).encode()


def encoder_paquet(messages: list[tuple[str, MessageEquipe]]) -> bytes:
    """Messages to several teams of one partition, as one record: ``{"lot": [[team, message], …]}``."""
    return b'{"lot":' + _PAQUET.dump_json(messages) + b"}"


def decoder(cle: bytes | None, valeur: bytes) -> list[tuple[str, MessageEquipe]]:
    """A record of ``<app>-equipes``: one message keyed by its team, or a packet of them."""
    if valeur.startswith(b'{"lot":'):
        return _PAQUET.validate_json(valeur[7:-1])
    if cle is None:
        raise ValueError("a team message without a key (the team)")
    return [(cle.decode(), _UN.validate_json(valeur))]
