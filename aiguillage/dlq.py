"""Dead letters: what could not become a Signalement (or an Affectation row) is kept, never dropped.

The reason is in clear; the original bytes are AES-GCM encrypted with the key
from ``AIGUILLAGE_DLQ_KEY``, so a NIR inside them is never stored in clear.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


def chiffrer(cle: bytes, payload: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(cle).encrypt(nonce, payload, b"aiguillage-dlq")


def dechiffrer(cle: bytes, blob: bytes) -> bytes:
    return AESGCM(cle).decrypt(blob[:_NONCE], blob[_NONCE:], b"aiguillage-dlq")


@dataclass(frozen=True)
class Rejet:
    """Why one record was refused: a machine code, a sentence, and the fields at fault."""

    code: str
    reason: str
    fields: tuple[dict[str, str], ...] = ()
    ligne: int | None = None
    # The refused piece itself when it is smaller than the body (one CSV row with its
    # header): that is what the DLQ keeps, instead of the whole body once per bad row.
    brut: bytes | None = field(default=None, repr=False, compare=False)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.reason}
        if self.fields:
            body["fields"] = list(self.fields)
        if self.ligne is not None:
            body["ligne"] = self.ligne
        return body


def dead_letter(
    cle: bytes,
    *,
    source: str,
    stage: str,
    rejet: Rejet,
    payload: bytes,
    content_type: str | None = None,
    original_key: bytes | None = None,
    original_topic: str | None = None,
    original_partition: int | None = None,
    original_offset: int | None = None,
) -> dict[str, Any]:
    """A DeadLetter record (Avro dict) for one refused payload."""
    return {
        "dead_letter_id": str(uuid.uuid4()),
        "source": source,
        "stage": stage,
        "error_code": rejet.code,
        "reason": rejet.reason,
        "content_type": content_type,
        "payload_chiffre": chiffrer(cle, payload),
        "original_key": original_key,
        "original_topic": original_topic,
        "original_partition": original_partition,
        "original_offset": original_offset,
        "ligne": rejet.ligne,
        "rejete_le": datetime.now(UTC),
    }
