"""Builders for routing tests: a plausible canonical signalement, changed field by field."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from aiguillage.domain import Signalement, Source, signalement_id

RECU_LE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def nir_pseudo(n: int | str) -> str:
    return hashlib.sha256(f"assure-{n}".encode()).hexdigest()


def sig(ref: str = "REF-1", **changes: Any) -> Signalement:
    source = Source(changes.pop("source", "cpam"))
    data: dict[str, Any] = {
        "signalement_id": signalement_id(source, ref),
        "source": source,
        "source_ref": ref,
        "recu_le": RECU_LE,
        "nir_pseudonyme": nir_pseudo(ref),
        "annee_naissance": 1975,
        "sexe": "F",
        "commune_insee": "31555",
        "code_postal": "31000",
        "departement": "31",
        "situation": "salarie",
        "risque": "maladie",
        "arret_jours": None,
        "motif": "autre",
        "axe_suggere": None,
        "consentement": True,
    }
    data.update(changes)
    return Signalement.model_validate(data)
