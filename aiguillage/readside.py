"""The read side: caseworker queues as the sinks materialised them in SQL."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from sqlalchemy import Engine, select

from sinks import db

EN_ATTENTE = ("requested", "received")


def files(engine: Engine, file: str | None = None) -> list[dict[str, Any]]:
    """Queues with their waiting signalements, most urgent then oldest first."""
    t = db.affectations
    q = select(t).where(t.c.statut.in_(EN_ATTENTE)).order_by(t.c.file, t.c.priorite, t.c.recu_le)
    if file is not None:
        q = q.where(t.c.file == file)
    out: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(q).mappings():
            f = out.setdefault(row["file"], {"file": row["file"], "axe": row["axe"], "departement": row["departement"], "en_attente": 0, "signalements": []})
            f["en_attente"] += 1
            f["signalements"].append(
                {
                    "signalement_id": row["signalement_id"],
                    "source": row["source"],
                    "priorite": row["priorite"],
                    "recu_le": row["recu_le"].isoformat(),
                    "echeance_premier_contact": row["echeance_premier_contact"].isoformat(),
                    "assistant": row["assistant"],
                    "regle": row["regle"],
                    "explication": row["explication"],
                    "statut": row["statut"],
                }
            )
    return list(out.values())


def router(engine: Engine) -> APIRouter:
    api = APIRouter()

    @api.get("/v1/files")
    def get_files() -> list[dict[str, Any]]:
        return files(engine)

    @api.get("/v1/files/{file}")
    def get_file(file: str) -> dict[str, Any]:
        found = files(engine, file)
        if not found:
            raise HTTPException(404, f"no waiting signalement in file {file!r}")
        return found[0]

    return api
