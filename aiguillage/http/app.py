"""The HTTP process (``aiguillage gateway``): its app, which assembles the routers of
:mod:`aiguillage.http`, the lag it measures for the whole hub, the drain on a stop.

Every route names who may call it (README "Staff access"): the partner POSTs take partner
tokens; the staff routes an OpenID Connect token with the right they need
(aiguillage/auth); ``OUVERTES`` lists the few that answer without a credential.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from aiguillage import metrics as hub_metrics
from aiguillage import ops
from aiguillage.auth import dev_issuer
from aiguillage.auth import garde as acces
from aiguillage.auth.audit import Journal
from aiguillage.auth.droits import Droit
from aiguillage.auth.oidc import Verificateur
from aiguillage.broker_profile import profile
from aiguillage.config import Settings
from aiguillage.embedded.outbox import Outbox
from aiguillage.http import (
    charges,
    fhir,
    files,
    health,
    limites,
    moi,
    signalements,
    suivis,
    tableau_de_bord,
)
from aiguillage.kafka import Publieur
from aiguillage.routing.config_file import charger
from aiguillage.schema_registry import make_codec
from aiguillage.security import kafka_client_kwargs
from sinks import db

log = logging.getLogger(__name__)
DRAIN_RETRY_AFTER = "10"
# Routes that answer without any credential: probes, the dashboard's page and files (no data in
# them: it signs in), the development issuer's public keys, the API's description. /metrics too
# unless AIGUILLAGE_METRICS_PUBLIC=false. tests/test_acces.py checks every other route says 401.
OUVERTES = ("/healthz", "/readyz", "/", "/static/{nom}", "/dev-oidc/.well-known/openid-configuration",
            "/dev-oidc/jwks.json", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc",
            "/fhir/metadata")  # FHIR's CapabilityStatement is public by the standard (issue 19's route)


def make_api(settings: Settings) -> FastAPI:
    outbox = Outbox(settings.outbox) if settings.outbox else None
    publieur = Publieur(settings.bootstrap_servers(), make_codec(settings), outbox=outbox)
    engine = db.make_engine(settings.database_url)
    db.upgrade(settings.database_url)
    moteur = charger(settings.routing_file)
    garde = acces.Garde(Verificateur.depuis(settings), moteur.departement_de_equipe, Journal(publieur))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        lag = asyncio.create_task(ops.mesurer_lag(
            settings.bootstrap_servers(), profile(settings).true_end_offsets, settings.worker_id,
            settings.lag_intervalle, **kafka_client_kwargs(settings)))
        log.info("gateway ready: broker %s, database %s", settings.bootstrap_servers(),
                 settings.database_url.split("@")[-1])
        yield
        lag.cancel()
        await publieur.close()
        engine.dispose()
        if outbox is not None:
            outbox.close()

    app = FastAPI(title="Aiguillage", version="0.1.0", lifespan=lifespan)
    app.state.draining = False  # set on SIGUSR1 by `aiguillage up` when it stops (drain_on_signal)

    @app.middleware("http")
    async def _refuse_while_draining(request: Request, call_next):
        if app.state.draining and request.method == "POST":
            return JSONResponse(
                {"error": "arret-en-cours", "detail": "the hub is stopping: nothing was accepted, retry later"},
                status_code=503, headers={"Retry-After": DRAIN_RETRY_AFTER},
            )
        return await call_next(request)
    acces.installer(app)
    metriques = [] if settings.metrics_public else [Depends(garde.exige(Droit.LIRE_METRIQUES))]
    app.include_router(health.router(settings, engine, metriques))
    app.include_router(signalements.router(settings, publieur))
    app.include_router(files.router(engine, garde))
    app.include_router(suivis.router(publieur, garde, engine))
    app.include_router(tableau_de_bord.router(engine, garde))
    app.include_router(charges.router(publieur, garde, engine, moteur))
    app.include_router(moi.router(garde))
    app.include_router(fhir.router(settings, engine))
    if settings.oidc_dev_jwks is not None:  # set by `aiguillage up` only, when no real provider is named
        app.include_router(dev_issuer.router(settings.oidc_dev_jwks))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "erreur-interne", "detail": type(exc).__name__}, status_code=500)

    app.add_middleware(limites.LimiteCorps, limite=settings.max_body_bytes)
    seaux = limites.Seaux(settings.limite_partenaire, settings.limite_partenaire_rafale) if settings.limite_partenaire else None
    app.add_middleware(limites.LimiteParJeton, seaux=seaux)
    app.add_middleware(hub_metrics.MesureHttp)

    return app


def drain_on_signal(app: FastAPI) -> None:
    """SIGUSR1: answer every POST with 503 and Retry-After from now on (the hub is stopping)."""
    def drain(*_: object) -> None:
        app.state.draining = True

    signal.signal(signal.SIGUSR1, drain)
