"""``suivis`` -> SQL table ``suivis``: one row per caseworker-side event, keyed by ``suivi_id``.

A suivi id is deterministic on the caller's side, so a resend is the same row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from aiguillage import topics
from sinks import db
from sinks.base import Sink


class SuivisSink(Sink):
    topics = (topics.SUIVIS,)
    schema = "Suivi"
    name = "suivis"

    def write(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        db.upsert(conn, db.suivis, list({r["suivi_id"]: r for r in rows}.values()), key="suivi_id")
