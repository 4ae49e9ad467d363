"""``audit`` -> SQL table ``audit``: one row per access, keyed by ``audit_id`` (a resend is the same row)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from aiguillage import topics
from sinks import db
from sinks.base import Sink


class AuditSink(Sink):
    topics = (topics.AUDIT,)
    schema = "Audit"
    name = "audit"

    def write(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        lignes = [{**r, "signalements": " ".join(r["signalements"])} for r in rows]
        db.upsert(conn, db.audit, list({r["audit_id"]: r for r in lignes}.values()), key="audit_id")
