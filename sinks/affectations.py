"""``affectations`` -> SQL table ``affectations``: one row per signalement, the latest decision wins."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from aiguillage import topics
from sinks import db
from sinks.base import Sink
from sinks.retours import appliquer_statuts


class AffectationsSink(Sink):
    topics = (topics.AFFECTATIONS,)
    schema = "Affectation"
    name = "affectations"

    def write(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        # Several decisions for one signalement in a batch: keep the highest sequence.
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            cur = latest.get(row["signalement_id"])
            if cur is None or row["sequence"] >= cur["sequence"]:
                latest[row["signalement_id"]] = row
        db.upsert(conn, db.affectations, list(latest.values()), key="signalement_id", newer="sequence")
        # A retour may have overtaken its affectation (other topic, other sink): apply it now.
        appliquer_statuts(conn, list(latest))
