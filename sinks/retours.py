"""``retours.<source>`` -> SQL table ``retours``, and ``affectations.statut`` moved forward.

Each retour is kept (keyed by ``retour_id``); the status of the affectation becomes that
of its latest retour, and only if it is newer than the one it has (``statut_change_le``):
replays and out-of-order deliveries never move a status back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, exists, func, or_, select, update

from aiguillage import topics
from aiguillage.domain import Source
from sinks import db
from sinks.base import Sink

_CHUNK = 500


def appliquer_statuts(conn: Connection, signalement_ids: list[str]) -> None:
    """Give each listed affectation the status of its latest retour, if that one is newer."""
    a, r = db.affectations, db.retours.alias("r")
    mine = r.c.signalement_id == a.c.signalement_id
    dernier_statut = (
        select(r.c.statut).where(mine).order_by(r.c.change_le.desc(), r.c.retour_id.desc()).limit(1)
    ).scalar_subquery()
    dernier_change = select(func.max(r.c.change_le)).where(mine).scalar_subquery()
    plus_recent = exists().where(mine, or_(a.c.statut_change_le.is_(None), r.c.change_le > a.c.statut_change_le))
    for i in range(0, len(signalement_ids), _CHUNK):
        conn.execute(
            update(a)
            .where(a.c.signalement_id.in_(signalement_ids[i : i + _CHUNK]), plus_recent)
            .values(statut=dernier_statut, statut_change_le=dernier_change)
        )


class RetoursSink(Sink):
    topics = tuple(topics.retours(s) for s in Source)
    schema = "Retour"
    name = "retours"

    def write(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        # The Task JSON (Retour.v2) is for the partner's consumer: /fhir/Task rebuilds it from the row.
        rows = [{k: v for k, v in r.items() if k != "fhir_task"} for r in rows]
        db.upsert(conn, db.retours, list({r["retour_id"]: r for r in rows}.values()), key="retour_id")
        appliquer_statuts(conn, sorted({r["signalement_id"] for r in rows}))
