"""The HTTP process (``aiguillage gateway``): partner gateway, read side, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aiguillage import readside, suivis_api, tableau_de_bord
from aiguillage.config import Settings
from aiguillage.kafka import Publieur
from aiguillage.schema_registry import make_codec
from connectors import gateway
from sinks import db


def make_api(settings: Settings) -> FastAPI:
    publieur = Publieur(settings.bootstrap_servers(), make_codec(settings))
    engine = db.make_engine(settings.database_url)
    db.upgrade(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await publieur.close()
        engine.dispose()

    app = FastAPI(title="Aiguillage", version="0.1.0", lifespan=lifespan)
    app.include_router(gateway.router(settings, publieur))
    app.include_router(readside.router(engine))
    app.include_router(suivis_api.router(publieur))
    app.include_router(tableau_de_bord.router(engine))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "erreur-interne", "detail": type(exc).__name__}, status_code=500)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
