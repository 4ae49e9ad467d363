"""``agregats`` -> SQL table ``agregats``: the latest value of each figure, keyed by ``cle``.

``valeur`` is null when the figure is masked (statistical confidentiality); an older
value (``maj_le``) never overwrites a newer one, so a replay cannot move a figure back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from aiguillage import topics
from sinks import db
from sinks.base import Sink


class AgregatsSink(Sink):
    topics = (topics.AGREGATS,)
    schema = "Agregat"
    name = "agregats"

    def write(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        ecrire(conn, rows)


def ecrire(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Upsert Agregat records; within a batch and across batches the newest ``maj_le`` wins."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        cur = latest.get(row["cle"])
        if cur is None or row["maj_le"] >= cur["maj_le"]:
            latest[row["cle"]] = row
    db.upsert(conn, db.agregats, list(latest.values()), key="cle", newer="maj_le")
