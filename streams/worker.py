"""``aiguillage worker``: build the app, install the agents, run until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import faust

from aiguillage import logs, tracing
from aiguillage.broker_profile import profile
from aiguillage.config import Settings
from aiguillage.routing.rechargement import ConfigCourante
from aiguillage.schema_registry import make_codec
from streams import (
    event_loop,
    faust_patches,
    figures,
    gc_tuning,
    ingress,
    internal_topics,
    lifecycle,
    teams,
)
from streams.dead_letters import DeadLetters
from streams.deadlines import EcheancesSurDisque
from streams.topology import Topology, make_app
from streams.waiting_files import FilesSurDisque

log = logging.getLogger(__name__)


def build(settings: Settings) -> faust.App:
    faust_patches.install(profile(settings))  # refuses to start if what it patches changed
    app = make_app(settings)
    topo = Topology(app)
    codec = make_codec(settings)
    config = ConfigCourante(settings.routing_file)
    rejets = DeadLetters(topo.rejetes, codec, settings.require_dlq_key(), settings.resend_timeout)
    ingress.install(topo, ingress.Routeur(topo, codec, rejets, config))
    # Tables on disk: their indexes too (waiting files, deadlines), so that memory does not grow
    # with the open work.
    sur_disque = settings.store != "memory://"
    files = FilesSurDisque(settings.data_dir / "attente") if sur_disque else None
    teams.install(topo, teams.Equipes(topo, codec, config, rejets, settings.seuil_confidentialite, files))
    ag = figures.install(app, codec, topo.cycles, rejets, settings.seuil_confidentialite, settings.agregats_intervalle)
    # The figures' first stage reads the life-cycle agent's topics: it runs in that agent's pass.
    echeances = EcheancesSurDisque(settings.data_dir / "echeances") if sur_disque else None
    purges = EcheancesSurDisque(settings.data_dir / "purges") if sur_disque else None
    grace = timedelta(days=settings.purge_apres_jours)
    lifecycle.install(topo, lifecycle.Cycle(topo, codec, config, rejets, echeances, purges, grace),
                  settings.echeances_intervalle, aussi=ag, entretien=settings.entretien_intervalle)
    app.on_partitions_assigned.connect(log_assignment)  # type: ignore[arg-type]  # mode's signal types
    surveiller(app, topo, settings, ag)
    return app


def surveiller(app: faust.App, topo: Topology, settings: Settings, ag: Any) -> None:
    """What an operator reads of the worker: its /metrics, /healthz and /readyz (on
    AIGUILLAGE_METRICS_PORT), its group's consumer lag and its tables' sizes, every 15 s."""
    from aiguillage import metrics, ops
    from aiguillage.security import kafka_client_kwargs

    client = kafka_client_kwargs(settings)
    tables = {"assures": topo.assures, "charges": topo.charges, "dossiers": topo.dossiers,
              "assures_equipe": topo.assures_equipe, "escalades": topo.escalades, "cycles": topo.cycles,
              "agregats_totaux": ag.totaux, "agregats_archives": ag.archives}
    if settings.metrics_port:
        checks = {"broker": ops.broker(settings.bootstrap_servers(), **client)}
        if settings.schema_registry:
            checks["schema-registry"] = ops.registry(settings.schema_registry)

        @app.task
        async def exposer() -> None:
            await ops.serve(settings.metrics_port, checks, host=settings.http_host)  # type: ignore[arg-type]

    @app.task
    async def annoncer() -> None:  # the loop the worker really runs on (AIGUILLAGE_EVENT_LOOP)
        log.info("event loop: %s", type(asyncio.get_running_loop()).__module__.split(".")[0])

    @app.timer(interval=15.0, name="surveillance")
    async def mesurer() -> None:
        if settings.store == "memory://":  # on disk, a count reads every key: not every 15 s
            for nom, table in tables.items():
                metrics.ETAT.labels(nom).set(len(table))


async def log_assignment(_app: Any, assigned: set[Any], **_: Any) -> None:
    """One line per rebalance saying which ingress partitions this worker now owns: with
    several workers in the group, this is how an operator (and the scale-out test) sees the share."""
    ingress = sorted(
        f"{tp.topic}[{tp.partition}]" for tp in assigned if ".signalements.entrants." in f".{tp.topic}"  # a prefix too
    )
    log.info("ingress partitions assigned: %s", " ".join(ingress) or "none")


def run(settings: Settings) -> None:
    from aiguillage.security import kafka_client_kwargs

    app = build(settings)
    try:
        internal_topics.creer(app, {"bootstrap_servers": settings.bootstrap_servers(),
                                    "client_id": f"{settings.worker_id}-admin", **kafka_client_kwargs(settings)})
    except Exception as exc:  # noqa: BLE001 - Faust declares them too; a broker away is its retry's business
        log.warning("could not make the internal topics before joining (%s); Faust will", exc)
    gc_tuning.regler()
    event_loop.choisir(settings.event_loop)
    tracing.configurer("worker")
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True,
                          logging_config=logs.config(settings.log_level, settings.log_format, "worker"))
    worker.execute_from_commandline()
