"""``aiguillage worker``: build the app, install the agents, run until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
from typing import Any

import faust

from aiguillage.config import Settings
from aiguillage.routing.rechargement import ConfigCourante
from aiguillage.schema_registry import make_codec
from streams import (
    agregats,
    correctifs_faust,
    cycle,
    equipes,
    raccourcis_faust,
    ramasse_miettes,
    routage,
)
from streams.attente import FilesSurDisque
from streams.echeances import EcheancesSurDisque
from streams.topology import Topology, make_app

log = logging.getLogger(__name__)


def build(settings: Settings) -> faust.App:
    correctifs_faust.installer()  # no record doubled or lost when a worker restarts
    raccourcis_faust.installer()  # fewer turns of the event loop per record
    if settings.embedded_broker:
        from streams import embarque

        embarque.installer(settings.bootstrap_servers())
    app = make_app(settings)
    topo = Topology(app)
    codec = make_codec(settings)
    config = ConfigCourante(settings.routing_file)
    routeur = routage.Routeur(topo, codec, settings.require_dlq_key(), config)
    routage.install(topo, routeur)
    # Tables on disk: their indexes too (waiting files, deadlines), so that memory does not grow
    # with the open work.
    sur_disque = settings.store != "memory://"
    files = FilesSurDisque(settings.data_dir / "attente") if sur_disque else None
    equipes.install(topo, equipes.Equipes(topo, codec, config, files))
    ag = agregats.install(app, codec, topo.cycles, settings.seuil_confidentialite, settings.agregats_intervalle)
    # The figures' first stage reads the life-cycle agent's topics: it runs in that agent's pass.
    echeances = EcheancesSurDisque(settings.data_dir / "echeances") if sur_disque else None
    cycle.install(topo, cycle.Cycle(topo, codec, config, routeur, echeances), settings.echeances_intervalle, aussi=ag)
    app.on_partitions_assigned.connect(log_assignment)
    return app


async def log_assignment(_app: Any, assigned: set[Any], **_: Any) -> None:
    """One line per rebalance saying which ingress partitions this worker now owns: with
    several workers in the group, this is how an operator (and the scale-out test) sees the share."""
    ingress = sorted(
        f"{tp.topic}[{tp.partition}]" for tp in assigned if tp.topic.startswith("signalements.entrants.")
    )
    log.info("ingress partitions assigned: %s", " ".join(ingress) or "none")


def run(settings: Settings) -> None:
    app = build(settings)
    ramasse_miettes.regler()
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
