"""The probes and the metrics of the HTTP process: ``/healthz`` (alive), ``/readyz`` (its
dependencies answer), ``/metrics`` (every process's under ``aiguillage up``)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.params import Depends
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine

from aiguillage import metrics as hub_metrics
from aiguillage import ops
from aiguillage.config import Settings
from aiguillage.security import kafka_client_kwargs


def router(settings: Settings, engine: Engine, metriques: Sequence[Depends] = ()) -> APIRouter:
    """``metriques``: what ``/metrics`` requires (nothing unless AIGUILLAGE_METRICS_PUBLIC=false)."""
    api = APIRouter()
    readiness = {"broker": ops.broker(settings.bootstrap_servers(), **kafka_client_kwargs(settings)),
                 "database": ops.database(engine)}
    if settings.schema_registry:
        readiness["schema-registry"] = ops.registry(settings.schema_registry)

    @api.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz() -> JSONResponse:
        """503 naming each dependency that does not answer: the broker, the database, the registry."""
        status, body = await ops.pret(readiness)
        return JSONResponse(body, status_code=status)

    @api.get("/metrics", dependencies=list(metriques))
    def metrics() -> Response:
        body, content_type = hub_metrics.exposition()
        return Response(body, media_type=content_type)

    return api
