"""FHIR R4 for the SPST: its referrals' Tasks, read with its own partner token.

- ``GET /fhir/metadata``: the CapabilityStatement (no token needed, as FHIR expects);
- ``GET /fhir/Task?based-on=ServiceRequest/<reference>``: a ``searchset`` Bundle of the Tasks
  of the SPST's ServiceRequest (its ``identifier`` value, the hub's ``source_ref``);
- ``GET /fhir/Task/<id>``: one Task, by the hub's ``signalement_id``.

Only the token's own source's referrals are ever read: another partner's token is 403, and
an id of another source's signalement is 404, as an unknown one. Errors are OperationOutcomes.
The Task is built by :func:`aiguillage.fhir.tache.tache` from the tables the sinks write
(``affectations``: team, file, status; ``retours``: the outcome), the one ``retours.spst``
carries being built by the same function.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, select

from aiguillage.config import Settings
from aiguillage.domain import Source
from aiguillage.fhir.reponses import FHIR_JSON, capability_statement, outcome
from aiguillage.fhir.tache import tache
from connectors.jetons import Authentification
from sinks import db

SOURCE = Source.SPST  # the partner that speaks FHIR
_PREFIXE = "ServiceRequest/"


def _fhir(body: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers or None)


def _erreur(status: int, code: str, detail: str, expression: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return _fhir(outcome(code, detail, expression), status, **headers)


def taches(engine: Engine, source: Source, *, source_ref: str | None = None,
           signalement_id: str | None = None) -> list[dict[str, Any]]:
    """The Tasks of ``source``'s signalements with this reference or this id."""
    a, r = db.affectations, db.retours
    q = select(a.c.signalement_id, a.c.source_ref, a.c.statut, a.c.equipe, a.c.file, a.c.decide_le,
               a.c.statut_change_le).where(a.c.source == source.value)
    q = q.where(a.c.source_ref == source_ref) if source_ref is not None else q.where(a.c.signalement_id == signalement_id)
    out = []
    with engine.connect() as conn:
        for row in conn.execute(q.order_by(a.c.signalement_id)).mappings():
            issue = conn.execute(
                select(r.c.issue).where(r.c.signalement_id == row["signalement_id"], r.c.statut == row["statut"])
                .order_by(r.c.change_le.desc()).limit(1)).scalar()
            out.append(tache(signalement_id=row["signalement_id"], source_ref=row["source_ref"], statut=row["statut"],
                             equipe=row["equipe"], file=row["file"], issue=issue,
                             change_le=row["statut_change_le"] or row["decide_le"]))
    return out


def router(settings: Settings, engine: Engine) -> APIRouter:
    api = APIRouter(prefix="/fhir")
    auth = Authentification(settings.tokens_path())

    def refus(request: Request) -> JSONResponse | None:
        r = auth.verifier(request.headers.get("authorization"), SOURCE)
        return None if r is None else _erreur(r.status, r.code, r.detail)

    @api.get("/metadata")
    def metadata(request: Request) -> JSONResponse:
        return _fhir(capability_statement(str(request.base_url) + "fhir", datetime.now(UTC).date().isoformat()))

    @api.get("/Task")
    def rechercher(request: Request) -> JSONResponse:
        if (r := refus(request)) is not None:
            return r
        based_on = request.query_params.get("based-on")
        if not based_on:
            return _erreur(422, "parametre-manquant", "search the Tasks by based-on=ServiceRequest/<your reference>",
                           "Task.basedOn")
        ref = based_on.removeprefix(_PREFIXE)
        if not ref or "/" in ref:
            return _erreur(422, "parametre-invalide", "based-on: expected ServiceRequest/<your reference>",
                           "Task.basedOn")
        trouvees = taches(engine, SOURCE, source_ref=ref)
        return _fhir({
            "resourceType": "Bundle", "type": "searchset", "total": len(trouvees),
            "link": [{"relation": "self", "url": str(request.url)}],
            "entry": [{"fullUrl": f"{request.base_url}fhir/Task/{t['id']}", "resource": t,
                       "search": {"mode": "match"}} for t in trouvees],
        })

    @api.get("/Task/{task_id}")
    def lire(task_id: str, request: Request) -> JSONResponse:
        if (r := refus(request)) is not None:
            return r
        trouvees = taches(engine, SOURCE, signalement_id=task_id)
        if not trouvees:
            return _erreur(404, "introuvable", "no Task of yours has this id")
        return _fhir(trouvees[0])

    @api.get("/{type_}")
    def autre(type_: str, request: Request) -> JSONResponse:
        if (r := refus(request)) is not None:  # like every route but the open ones: a credential first
            return r
        return _erreur(404, "type-non-servi", "this server serves Task only (see /fhir/metadata)")

    return api
