"""Generated canonical Signalements, Avro-encoded once and fed identically to every contender."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, timedelta

from aiguillage.codec import AvroCodec
from aiguillage.domain import Source, signalement_id

# The shipped routing configuration is the Carsat Occitanie's: communes of its 13 départements,
# so that nearly every signalement goes through a team (the team agent, caseloads, waiting
# files), and one outside it (no team: straight to the hors-territoire file), as in real traffic.
COMMUNES = ["31555", "31395", "12202", "34172", "81004", "30189", "66136", "11069", "65440", "46042",
            "82121", "09122", "32013", "48095", "75056"]
MOTIFS = ["arret-long", "inaptitude", "rqth", "retard-paiement-ij", "acces-aux-soins", "isolement"]
SITUATIONS = ["salarie", "demandeur-emploi", "independant", "fonctionnaire"]
COMMENTAIRE = "Arrêt prolongé, l'assuré souhaite un échange sur la reprise et le maintien dans l'emploi. " * 2


def departement(commune: str) -> str:
    return commune[:3] if commune.startswith("97") else commune[:2]


def signalement(i: int, run: str, rng: random.Random, recu_le: datetime) -> tuple[bytes, dict]:
    """The i-th signalement of a run: distinct id and assuré, ~400 bytes of Avro."""
    ref = f"BENCH-{run}-{i:09d}"
    commune = rng.choice(COMMUNES)
    arret = rng.random() < 0.6
    nir_pseudonyme = hashlib.sha256(f"{run}:{i}".encode()).hexdigest()
    return nir_pseudonyme.encode(), {
        "signalement_id": signalement_id(Source.SERVICE_MEDICAL, ref),
        "source": Source.SERVICE_MEDICAL.value,
        "source_ref": ref,
        "recu_le": recu_le,
        "nir_pseudonyme": nir_pseudonyme,
        "annee_naissance": rng.randint(1960, 2004),
        "tranche_age": None,
        "sexe": rng.choice("FM"),
        "code_postal": None,
        "commune_insee": commune,
        "departement": departement(commune),
        "situation": rng.choice(SITUATIONS),
        "risque": "maladie",
        "arret_debut": date(2025, 11, 1) if arret else None,
        "arret_jours": rng.randint(30, 300) if arret else None,
        "motif": rng.choice(MOTIFS),
        "axe_suggere": rng.choice([None, "PDP", "SPS"]),
        "consentement": True,
        "commentaire": COMMENTAIRE,
    }


Enregistrement = tuple[bytes, bytes, bytes]  # (key: assuré, value: Avro, signalement_id)


def generer(n: int, run: str, start: int = 0, seed: int = 8, debut: datetime | None = None) -> list[Enregistrement]:
    """``n`` records keyed by assuré as the connectors key them, with their signalement_id
    (an Affectation's key) so that an output can be matched to its input.

    Received today (``debut``, default now): signalements received months ago would all be
    past their first-contact deadline, and the hub's deadline scan would escalate every one
    of them in the middle of a run (an escalation is one more Affectation)."""
    codec = AvroCodec()
    rng = random.Random(seed + start)
    debut = debut or datetime.now(UTC).replace(microsecond=0)
    out = []
    for i in range(start, start + n):
        key, record = signalement(i, run, rng, debut + timedelta(milliseconds=i - start))
        out.append((key, codec.encode("Signalement", record), record["signalement_id"].encode()))
    return out
