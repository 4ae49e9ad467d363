"""Reading the figures back: the SQL ``agregats`` table (filled by its sink) and its filters.

The table shape is the sink's contract: ``cle`` (primary key), ``indicateur``,
``periode_type``, ``periode``, ``dimensions`` (JSON), ``valeur`` (null when
masked), ``masque``, ``maj_le``. Rows are already masked: they come from the topic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from sinks.db import agregats  # the table the ``agregats`` sink fills (sinks/db.py)


def dimensions(value: Any) -> dict[str, str]:
    """The JSON column comes back as a dict, or as text from a raw SQLite read."""
    parsed = value if isinstance(value, dict) else json.loads(value or "{}")
    return {str(k): str(v) for k, v in parsed.items()}


@dataclass(frozen=True)
class Filtre:
    """``territoire``: a département (absent: hub-wide rows only, without a département);
    ``axe``: only rows of that axe; ``par``: exactly these breakdowns (besides the
    territory and a filtered axe), ``()`` for totals, None for every breakdown."""

    indicateurs: tuple[str, ...] = ()
    periode_type: str | None = None
    periode: str | None = None
    depuis: str | None = None
    jusqu_a: str | None = None
    territoire: str | None = None
    axe: str | None = None
    par: tuple[str, ...] | None = None

    def garde(self, dims: dict[str, str]) -> bool:
        if dims.get("departement") != self.territoire:
            return False
        if self.axe is not None and dims.get("axe") != self.axe:
            return False
        if self.par is not None:
            reste = set(dims) - {"departement"} - ({"axe"} if self.axe else set())
            if reste != set(self.par):
                return False
        return True


def ligne(row: Any) -> dict[str, Any]:
    maj = row["maj_le"]
    return {
        "cle": row["cle"], "indicateur": row["indicateur"], "periode_type": row["periode_type"],
        "periode": row["periode"], "dimensions": dimensions(row["dimensions"]),
        "valeur": row["valeur"], "masque": bool(row["masque"]),
        "maj_le": maj.isoformat() if hasattr(maj, "isoformat") else str(maj),
    }


def lire(engine: Engine, f: Filtre) -> list[dict[str, Any]]:
    t = agregats
    q = select(t)
    if f.indicateurs:
        q = q.where(t.c.indicateur.in_(f.indicateurs))
    if f.periode_type:
        q = q.where(t.c.periode_type == f.periode_type)
    if f.periode:
        q = q.where(t.c.periode == f.periode)
    if f.depuis:
        q = q.where(t.c.periode >= f.depuis)
    if f.jusqu_a:
        q = q.where(t.c.periode <= f.jusqu_a)
    q = q.order_by(t.c.indicateur, t.c.periode, t.c.cle)
    with engine.connect() as conn:
        rows = [ligne(r) for r in conn.execute(q).mappings()]
    return [r for r in rows if f.garde(r["dimensions"])]



def territoires(engine: Engine) -> list[str]:
    """The départements that have figures."""
    t = agregats
    q = select(t.c.dimensions).where(t.c.indicateur == "signalements", t.c.periode_type == "annee")
    with engine.connect() as conn:
        deps = {dimensions(d).get("departement") for (d,) in conn.execute(q)}
    return sorted(d for d in deps if d)
