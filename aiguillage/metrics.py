"""The hub's Prometheus metrics, all here: every name starts with ``aiguillage_``, every label has
a bounded set of values (sources, stages, error codes, rules, axes, tables, topics, partitions,
groups, routes, statuses), never an id, a NIR or free text.

Each process serves its own (the gateway at ``/metrics``; the worker and the sinks on
``AIGUILLAGE_METRICS_PORT``: :mod:`aiguillage.ops`). Under ``aiguillage up`` every child writes
to one multi-process directory (``PROMETHEUS_MULTIPROC_DIR``), and the gateway's ``/metrics``
serves them all (prometheus-client's multi-process mode): one place to look.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
# A gauge written by one process per label set: the highest of the live processes' values.
_GAUGE: dict[str, Any] = {"multiprocess_mode": "livemax"} if MULTIPROCESS else {}

# Intake (gateway, batch files, the stream).
RECUS = Counter("aiguillage_signalements_acceptes_total", "Signalements accepted (a 202, or a batch row published)",
                ["source", "canal"])
REJETES = Counter("aiguillage_signalements_rejetes_total", "Records refused, by stage and error code",
                  ["source", "stage", "code"])
DLQ = Counter("aiguillage_dlq_total", "Dead letters sent to signalements.rejetes", ["source", "stage", "code"])
# Gateway answers.
REPONSES = Counter("aiguillage_http_reponses_total", "HTTP answers", ["route", "status"])
DUREE_HTTP = Histogram("aiguillage_http_duree_secondes", "HTTP answer time", ["route"],
                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
# Routing.
DECISIONS = Counter("aiguillage_decisions_total", "Routing decisions, by rule and axe", ["regle", "axe"])
LATENCE = Histogram("aiguillage_latence_affectation_secondes",
                    "From reception (recu_le) to the first Affectation sent",
                    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
ECHEANCES = Counter("aiguillage_echeances_depassees_total", "First-contact deadlines missed (one per breach)")
ESCALADES = Counter("aiguillage_escalades_total", "Escalations decided by the teams")
ETAT = Gauge("aiguillage_etat_entrees", "Entries of the worker's tables on its partitions", ["table"], **_GAUGE)
# Sinks.
ECRITURES = Counter("aiguillage_sink_lignes_total", "Rows written to SQL", ["table"])
REESSAIS = Counter("aiguillage_sink_reessais_total", "Retries while the database or the broker was away", ["table"])
ERREURS_SINK = Counter("aiguillage_sink_erreurs_total", "Records a sink refused for good (dead-lettered)", ["table"])
# Kafka.
LAG = Gauge("aiguillage_consumer_lag", "Records past what the group committed", ["group", "topic", "partition"],
            **_GAUGE)


def exposition() -> tuple[bytes, str]:
    """What ``/metrics`` answers: this process's metrics, or every process's in multi-process mode."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def process_mort(pid: int, directory: str | None) -> None:
    """A child of ``aiguillage up`` ended: its gauges no longer count (its counters still do)."""
    if directory:
        multiprocess.mark_process_dead(pid, directory)


def preparer_multiprocess(directory: Path) -> None:
    """An empty directory for the children's metrics (a previous run's would count twice)."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)


class MesureHttp:
    """ASGI middleware: each answer counted by route template and status, and timed. The route is
    the template (``/v1/files/{file}``), never the path a client chose; no route matched: ``autre``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        debut, status = time.perf_counter(), 500

        async def noter(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noter)
        finally:
            route = getattr(scope.get("route"), "path", None) or "autre"
            REPONSES.labels(route, str(status)).inc()
            DUREE_HTTP.labels(route).observe(time.perf_counter() - debut)
