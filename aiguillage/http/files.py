"""The read side: caseworker queues as the sinks materialised them in SQL.

Personal rows: each reader sees only the files of the teams their habilitations cover
(aiguillage/auth/droits.py), and each read is audited before it is answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool

from aiguillage.auth import droits
from aiguillage.auth.audit import Action
from aiguillage.auth.droits import Droit, Personne
from aiguillage.auth.garde import Garde, interdit
from aiguillage.kafka import BrokerIndisponible
from sinks import db

EN_ATTENTE = ("requested", "received")


def visible(p: Personne, equipe: str | None, departement: str, territoire_de: Mapping[str, str]) -> bool:
    """A row held by ``equipe`` (or by no team: a named file, read by its département's manager)."""
    if equipe is not None:
        return droits.peut_lire_equipe(p, equipe, territoire_de) is None
    return any(h.role is droits.Role.RESPONSABLE and h.territoire == departement for h in p.habilitations)


def files(engine: Engine, file: str | None = None, lecteur: Personne | None = None,
          territoire_de: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Queues with their waiting signalements, most urgent then oldest first; with ``lecteur``,
    only the rows they may see."""
    t = db.affectations
    q = select(t).where(t.c.statut.in_(EN_ATTENTE)).order_by(t.c.file, t.c.priorite, t.c.recu_le)
    if file is not None:
        q = q.where(t.c.file == file)
    out: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(q).mappings():
            if lecteur is not None and not visible(lecteur, row["equipe"], row["departement"], territoire_de or {}):
                continue
            f = out.setdefault(row["file"], {"file": row["file"], "axe": row["axe"], "departement": row["departement"],
                                             "equipe": row["equipe"], "en_attente": 0, "signalements": []})
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


def equipe_de(engine: Engine, signalement_id: str) -> tuple[bool, str | None, str | None]:
    """(known, the team holding it, its département) as the affectations sink wrote it."""
    t = db.affectations
    with engine.connect() as conn:
        row = conn.execute(select(t.c.equipe, t.c.departement).where(t.c.signalement_id == signalement_id)).first()
    return (False, None, None) if row is None else (True, row.equipe, row.departement)


def _ids(found: list[dict[str, Any]]) -> list[str]:
    return [s["signalement_id"] for f in found for s in f["signalements"]]


def router(engine: Engine, garde: Garde) -> APIRouter:
    api = APIRouter()
    exige_lire_files = Depends(garde.exige(Droit.LIRE_FILES))

    async def auditer(p: Personne, action: Action, found: list[dict[str, Any]], objet: str | None) -> None:
        if garde.journal is None:
            return
        try:
            await garde.journal.noter(p, action, _ids(found), objet)
        except BrokerIndisponible as exc:  # no trace, no personal row
            raise HTTPException(503, "the audit trail cannot be written: nothing is shown, retry later",
                                headers={"Retry-After": "5"}) from exc

    @api.get("/v1/files", description="Needs lire-files: an assistant's team, a responsable's team or territory.")
    async def get_files(p: Personne = exige_lire_files) -> list[dict[str, Any]]:
        found = await run_in_threadpool(files, engine, None, p, garde.territoire_de)
        await auditer(p, Action.LIRE_FILES, found, None)
        return found

    @api.get("/v1/files/{file}", description="Needs lire-files on the file's team.")
    async def get_file(file: str, p: Personne = exige_lire_files) -> dict[str, Any]:
        tous = await run_in_threadpool(files, engine, file)
        found = await run_in_threadpool(files, engine, file, p, garde.territoire_de)
        if tous and not found:
            raise interdit(Droit.LIRE_FILES.value)
        if not found:
            raise HTTPException(404, f"no waiting signalement in file {file!r}")
        await auditer(p, Action.LIRE_FILE, found, file)  # a file that holds rows: an id
        return found[0]

    return api
