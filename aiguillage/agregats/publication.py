"""From raw totals to published figures: percentiles, and statistical confidentiality.

Nothing leaves the hub unmasked: a count below the threshold (default 5) in a
cell narrower than a département (a file, a team, a caseworker, a commune) is
published as ``valeur = null, masque = true`` on the ``agregats`` topic, so the
SQL table, the API, the dashboard and the bilan, which all read from it, never
see it. A zero is not masked: it identifies nobody and says a backlog emptied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from aiguillage.agregats.periodes import analyser, cle

SEUIL_PAR_DEFAUT = 5
# Dimensions that narrow a cell below a département.
DIMENSIONS_FINES = frozenset({"file", "equipe", "assistant", "commune"})
# Histogram indicators (values in days) and the figures published for each.
HISTOGRAMMES = {
    "delai-premier-contact": ("p50", "p90", "moyenne"),
    "duree-accompagnement": ("p50", "moyenne"),
}

Valeur = int | dict[int, int]


def valeurs(totaux: Mapping[tuple[str, int | None], int]) -> dict[str, Valeur]:
    """Group (cle, bucket) -> n into cle -> count, or cle -> {days: n} for histograms."""
    out: dict[str, Any] = {}
    hist: dict[str, dict[int, int]] = defaultdict(dict)
    for (c, bucket), n in totaux.items():
        if bucket is None:
            out[c] = out.get(c, 0) + n
        elif n:
            hist[c][bucket] = hist[c].get(bucket, 0) + n
    out.update(hist)
    return out


def fusionner(parts: Iterable[Valeur]) -> Valeur:
    """Sum the per-partition values of one figure."""
    total: int = 0
    hist: dict[int, int] = {}
    for v in parts:
        if isinstance(v, dict):
            for b, n in v.items():
                hist[int(b)] = hist.get(int(b), 0) + n
        else:
            total += v
    return {b: n for b, n in hist.items() if n} if hist else total


def percentile(hist: Mapping[int, int], q: float) -> float | None:
    """Nearest rank: the smallest value with at least q of the samples at or below it."""
    n = sum(hist.values())
    if n <= 0:
        return None
    rang, cumul = q * n, 0
    for valeur in sorted(hist):
        cumul += hist[valeur]
        if cumul >= rang:
            return float(valeur)
    return float(max(hist))


def est_fine(dimensions: Mapping[str, str]) -> bool:
    return bool(DIMENSIONS_FINES & dimensions.keys())


def masque(dimensions: Mapping[str, str], effectif: float, seuil: int) -> bool:
    return est_fine(dimensions) and 0 < effectif < seuil


def agregats(cle_: str, valeur: Valeur, seuil: int, maj_le: datetime) -> list[dict[str, Any]]:
    """The Agregat records (Avro ``Agregat`` dicts) published for one raw figure."""
    indicateur, periode_type, periode_, dims = analyser(cle_)

    def record(ind: str, v: float | None, effectif: float) -> dict[str, Any]:
        cache = v is not None and masque(dims, effectif, seuil)
        return {
            "cle": cle(ind, periode_type, periode_, dims), "indicateur": ind,
            "periode_type": periode_type, "periode": periode_, "dimensions": dict(dims),
            "valeur": None if cache else v, "masque": cache, "maj_le": maj_le,
        }

    if indicateur in HISTOGRAMMES:
        hist = valeur if isinstance(valeur, dict) else {}
        n: float = sum(hist.values())
        out: list[dict[str, Any]] = []
        for stat in HISTOGRAMMES[indicateur]:
            if stat == "moyenne":
                v = round(sum(b * k for b, k in hist.items()) / n, 1) if n else None
            else:
                v = percentile(hist, int(stat[1:]) / 100)
            out.append(record(f"{indicateur}-{stat}", v, n))
        return out
    n = float(valeur if isinstance(valeur, int) else sum(valeur.values()))
    return [record(indicateur, n, n)]


def tout_publier(totaux: Mapping[tuple[str, int | None], int], seuil: int, maj_le: datetime) -> list[dict[str, Any]]:
    """Every figure of a set of raw totals, as published (what the stream does, in one go)."""
    return [rec for c, v in valeurs(totaux).items() for rec in agregats(c, v, seuil, maj_le)]
