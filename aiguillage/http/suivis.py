"""``POST /v1/suivis``: a caseworker-side event (JSON Suivi), published on ``suivis``.

202 with the ``suivi_id`` once Kafka acknowledged the write; 422 naming each wrong
field (schema, then cross-field rules of :func:`aiguillage.routing.cycle.problemes_suivi`);
503 with ``Retry-After`` when the broker does not answer. Whether the transition is
possible is decided by the routing worker, which holds the signalement's status: an
impossible one goes to ``signalements.rejetes`` with the reason.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, ValidationError
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from aiguillage import topics
from aiguillage.auth import droits
from aiguillage.auth.audit import Action
from aiguillage.auth.droits import Droit, Personne
from aiguillage.auth.garde import Garde, interdit
from aiguillage.domain import Suivi
from aiguillage.http import files
from aiguillage.kafka import BrokerIndisponible, Publieur
from aiguillage.routing.cycle import problemes_suivi
from connectors.base import rejet_de_validation

MAX_BODY = 64_000


class SuiviRecu(Suivi):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _error(status: int, code: str, detail: str, fields: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, object] = {"error": code, "detail": detail}
    if fields:
        body["fields"] = fields
    return JSONResponse(body, status_code=status)


def router(publieur: Publieur, garde: Garde, engine: Engine) -> APIRouter:
    api = APIRouter()
    exige_poster_suivi = Depends(garde.exige(Droit.POSTER_SUIVI))

    @api.post("/v1/suivis", status_code=202, description="Needs poster-suivi on the team holding the signalement.")
    async def recevoir(request: Request, p: Personne = exige_poster_suivi) -> JSONResponse:
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _error(415, "type-de-contenu", f"a suivi is sent as application/json, not {content_type or 'nothing'}")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, "corps-trop-grand", f"the body exceeds {MAX_BODY} bytes")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(422, "json-invalide", f"the body is not valid JSON: {getattr(exc, 'msg', 'not UTF-8')}")
        if not isinstance(data, dict):
            return _error(422, "json-invalide", "the body must be one JSON object (a suivi)")
        try:
            suivi = SuiviRecu.model_validate(data)
        except ValidationError as exc:
            rejet = rejet_de_validation(exc)
            return _error(422, rejet.code, rejet.reason, list(rejet.fields))
        problemes = problemes_suivi(suivi)
        if problemes:
            noms = ", ".join(pb["field"] for pb in problemes)
            return _error(422, "suivi-invalide", f"invalid or missing field(s): {noms}", problemes)
        if suivi.signalement_id is not None:
            connu, equipe, _ = await run_in_threadpool(files.equipe_de, engine, suivi.signalement_id)
            if not connu:
                return _error(404, "signalement-inconnu", "no affectation of this signalement is known (yet): retry "
                              "once it is in a file")
        else:
            equipe = suivi.equipe  # an action collective: the team that held it
        manque = droits.peut_poster_suivi(p, equipe, garde.territoire_de)
        if manque is not None:
            raise interdit(manque)
        try:
            if garde.journal is not None:  # the trail first: a change without its trace is not made
                await garde.journal.noter(p, Action.SUIVI, [suivi.signalement_id] if suivi.signalement_id else [], equipe)
            await publieur.send(topics.SUIVIS, "Suivi", suivi.to_avro(), key=suivi.cle(), durable=True)
        except BrokerIndisponible as exc:
            resp = _error(503, "broker-indisponible", f"{exc}; nothing was accepted, retry later")
            resp.headers["Retry-After"] = "5"
            return resp
        return JSONResponse({"suivi_id": suivi.suivi_id}, status_code=202)

    return api
