"""Managers' resources: ``GET /v1/charges`` (caseloads) and ``POST /v1/reaffectations``.

A caseload is the count of a team's open signalements per caseworker, from the affectations
the sinks wrote, beside each caseworker's capacity in the routing configuration.

A reassignment is what the domain already knows: a ``reorientation`` suivi
(``equipe:<id>`` to another team, ``axe:PDP|SPS`` to the other axe of the same team), published
on ``suivis`` for the routing worker, which moves the signalement and re-routes it (or refuses
the transition, into ``signalements.rejetes``). Allowed to the responsable of the holding team
(within it) or of a territory holding both teams.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool

from aiguillage import topics
from aiguillage.auth import droits
from aiguillage.auth.audit import Action
from aiguillage.auth.droits import Droit, Personne
from aiguillage.auth.garde import Garde, interdit
from aiguillage.domain import Suivi, TypeSuivi
from aiguillage.http import files
from aiguillage.kafka import BrokerIndisponible, Publieur
from aiguillage.routing.config_file import Moteur
from sinks import db

OUVERTS = ("requested", "received", "accepted", "in-progress")


class Reaffectation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    signalement_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    vers: str = Field(pattern=r"^(axe:(PDP|SPS)|equipe:[\w.-]+)$", description="equipe:<id> or axe:PDP|SPS")


def charges(engine: Engine, moteur: Moteur, equipes: list[str]) -> list[dict[str, Any]]:
    t = db.affectations
    q = select(t.c.equipe, t.c.assistant).where(t.c.statut.in_(OUVERTS), t.c.equipe.in_(equipes))
    with engine.connect() as conn:
        par = Counter((r.equipe, r.assistant) for r in conn.execute(q))
    out = []
    for e in equipes:
        eq = moteur.equipes[e]
        out.append({
            "equipe": e,
            "en_attente": par.get((e, None), 0),  # open, no caseworker yet
            "assistants": [{"assistant": a.id, "capacite": a.capacite, "actifs": par.get((e, a.id), 0)}
                           for a in eq.assistants],
        })
    return out


def router(publieur: Publieur, garde: Garde, engine: Engine, moteur: Moteur) -> APIRouter:
    api = APIRouter()
    exige_lire_charges = Depends(garde.exige(Droit.LIRE_CHARGES))
    exige_reaffecter = Depends(garde.exige(Droit.REAFFECTER))

    @api.get("/v1/charges", description="Needs lire-charges: the responsable of the team or of its territory.")
    async def get_charges(equipe: str | None = None, p: Personne = exige_lire_charges) -> list[dict[str, Any]]:
        gerees = [e for e in moteur.equipes if droits.peut_lire_charges(p, e, garde.territoire_de) is None]
        if equipe is not None:
            if equipe not in moteur.equipes:
                raise HTTPException(404, f"no team {equipe!r} in the routing configuration")
            if equipe not in gerees:
                raise interdit(Droit.LIRE_CHARGES.value)
            gerees = [equipe]
        if garde.journal is not None:
            try:
                await garde.journal.noter(p, Action.LIRE_CHARGES, (), equipe)
            except BrokerIndisponible as exc:
                raise HTTPException(503, "the audit trail cannot be written, retry later",
                                    headers={"Retry-After": "5"}) from exc
        return await run_in_threadpool(charges, engine, moteur, gerees)

    @api.post("/v1/reaffectations", status_code=202,
              description="Needs reaffecter on the holding team and on the target team.")
    async def reaffecter(demande: Reaffectation, p: Personne = exige_reaffecter) -> JSONResponse:
        connu, de, _ = await run_in_threadpool(files.equipe_de, engine, demande.signalement_id)
        if not connu:
            raise HTTPException(404, "no affectation of this signalement is known (yet)")
        genre, _, cible = demande.vers.partition(":")
        vers = cible if genre == "equipe" else de
        if genre == "equipe" and cible not in moteur.equipes:
            raise HTTPException(422, f"no team {cible!r} in the routing configuration")
        manque = droits.peut_reaffecter(p, de, vers or "", garde.territoire_de)
        if manque is not None:
            raise interdit(manque)
        suivi = Suivi(suivi_id=f"reaffectation-{uuid.uuid4()}", signalement_id=demande.signalement_id,
                      type=TypeSuivi.REORIENTATION, survenu_le=datetime.now(UTC), equipe=de,
                      reorientation_vers=demande.vers)
        try:
            if garde.journal is not None:
                await garde.journal.noter(p, Action.REAFFECTATION, [demande.signalement_id], vers)
            await publieur.send(topics.SUIVIS, "Suivi", suivi.to_avro(), key=suivi.cle(), durable=True)
        except BrokerIndisponible as exc:
            return JSONResponse({"error": "broker-indisponible", "detail": f"{exc}; nothing was done, retry later"},
                                status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"suivi_id": suivi.suivi_id}, status_code=202)

    return api
