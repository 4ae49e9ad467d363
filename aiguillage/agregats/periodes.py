"""Period keys and aggregate keys: the names every figure is filed under.

``cle`` = ``indicateur|periode_type|periode|dim=val,dim=val`` with dimensions
sorted by name, so the same figure always has the same key (the ``agregats``
topic is compacted on it and the SQL table upserts on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

JOUR, SEMAINE, MOIS, ANNEE, COURANT = "jour", "semaine", "mois", "annee", "courant"
PERIODES = (JOUR, SEMAINE, MOIS, ANNEE)


def periode(type_: str, quand: date | datetime) -> str:
    """2026-11-23 (jour), 2026-W48 (ISO week), 2026-11 (mois), 2026 (annee), courant."""
    d = quand.date() if isinstance(quand, datetime) else quand
    if type_ == JOUR:
        return d.isoformat()
    if type_ == SEMAINE:
        annee, semaine, _ = d.isocalendar()
        return f"{annee}-W{semaine:02d}"
    if type_ == MOIS:
        return f"{d.year}-{d.month:02d}"
    if type_ == ANNEE:
        return str(d.year)
    if type_ == COURANT:
        return COURANT
    raise ValueError(f"periode_type must be one of {(*PERIODES, COURANT)}, not {type_!r}")


def cle(indicateur: str, periode_type: str, periode_: str, dimensions: Mapping[str, str]) -> str:
    dims = ",".join(f"{k}={dimensions[k]}" for k in sorted(dimensions))
    return f"{indicateur}|{periode_type}|{periode_}|{dims}"


def analyser(cle_: str) -> tuple[str, str, str, dict[str, str]]:
    """The inverse of :func:`cle`."""
    indicateur, periode_type, periode_, dims = cle_.split("|", 3)
    dimensions = dict(part.split("=", 1) for part in dims.split(",")) if dims else {}
    return indicateur, periode_type, periode_, dimensions
