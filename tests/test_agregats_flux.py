"""The live aggregates on the real broker equal a recount from the raw topics, including after
the worker is killed mid-stream and restarted (tables recovered from their changelogs)."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from aiguillage.demo.parametres import Parametres
from aiguillage.demo.runner import jouer
from aiguillage.demo.simulateur import simuler
from tests.agregats_util import ecarts, publies, recompter, rejets

pytestmark = pytest.mark.broker


def _attendre_egalite(bootstrap: str, routes: set[str] | None = None, timeout: float = 150.0) -> int:
    """Poll until the published figures equal the recount and routing has decided ``routes``
    (every demo signalement when None); return how many figures there are."""
    deadline = time.monotonic() + timeout
    diff: list[str] = []
    while time.monotonic() < deadline:
        attendu, non_routes = recompter(bootstrap)
        diff = ecarts(attendu, publies(bootstrap))
        manquants = non_routes if routes is None else non_routes & routes
        if manquants:
            diff = [f"{len(manquants)} signalements not routed yet; DLQ: {rejets(bootstrap)}"]
        elif not diff:
            if non_routes:  # routing's business, not the figures': they count what routing decided
                print(f"note: {len(non_routes)} demo signalements never routed; DLQ: {rejets(bootstrap)}")
            return len(attendu)
        time.sleep(2)
    raise AssertionError(f"{len(diff)} figures differ from the recount, e.g.:\n" + "\n".join(diff[:15]))


def d(mois: int) -> datetime:
    return datetime(2026, mois, 1, tzinfo=UTC)


def _params(assures: int) -> Parametres:
    return replace(Parametres(), assures_par_an=assures)


def _jouer(bootstrap: str, debut: datetime, fin: datetime, seed: int, assures: int) -> dict[str, int]:
    return asyncio.run(jouer(bootstrap, debut, fin, 0, _params(assures), seed=seed))


def test_aggregates_equal_a_recount_of_the_raw_topics_even_after_a_worker_crash(hub_factory, sqlite_url, broker):
    running = hub_factory(sqlite_url, components=("worker",))

    premier = _jouer(broker.bootstrap, d(1), d(3), seed=11, assures=500)  # ~80 assurés in 2 months
    assert premier["signalements"] > 40
    n = _attendre_egalite(broker.bootstrap)
    assert n > 200

    # Mid-stream: traffic keeps coming while the worker is killed (no clean shutdown) and restarted.
    running.hub.processes["worker"].send_signal(signal.SIGKILL)
    running.hub.processes["worker"].wait(10)
    running.hub.processes.pop("worker")
    _jouer(broker.bootstrap, d(3), d(4), seed=12, assures=500)
    running.hub.start("worker")
    _jouer(broker.bootstrap, d(4), d(5), seed=13, assures=500)
    # Traffic sent after the restart is routed and counted by the restarted worker.
    apres = {e.record["signalement_id"] for e in simuler(_params(500), d(4), d(5), seed=13) if e.nature == "signalement"}
    _attendre_egalite(broker.bootstrap, routes=apres)
    # The restarted worker rebuilt its totals from the dossiers it recovered from the changelog.
    log = (running.hub.log_dir / "worker.log").read_text(errors="replace")
    assert log.count("aggregates rebuilt") >= 2
