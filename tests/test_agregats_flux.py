"""The live aggregates on the real broker equal a recount from the raw topics, including after
the worker is killed mid-stream and restarted (tables recovered from their changelogs)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from aiguillage import topics
from aiguillage.demo.parametres import Parametres
from aiguillage.demo.runner import jouer
from aiguillage.demo.simulateur import simuler
from aiguillage.domain import Suivi
from aiguillage.kafka_local.cluster import LocalKafka
from aiguillage.topics import create_topics
from tests.agregats_util import ecarts, publies, recompter, rejets
from tests.kafka_util import read_topic
from tests.pannes_util import CODEC, produire

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A Kafka node of its own: the recount reads whole topics, and on the session broker they hold
    whatever the tests before this one sent (a fresh worker group routes those again)."""
    with LocalKafka(tmp_path_factory.mktemp("kafka-recount")) as k:
        asyncio.run(create_topics(k.bootstrap, partitions=4))
        yield k


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


def _un_signalement_route(bootstrap: str) -> str:
    """A signalement routing decided, with no suivi yet."""
    avec_suivi = {CODEC.decode("Suivi", r.value)["signalement_id"] for r in read_topic(bootstrap, topics.SUIVIS)}
    return next(k for r in read_topic(bootstrap, topics.AFFECTATIONS) if (k := r.key.decode()) not in avec_suivi)


def _rejete(bootstrap: str, sid: str) -> bool:
    dls = [CODEC.decode("DeadLetter", r.value) for r in read_topic(bootstrap, topics.REJETES)]
    return any(dl["original_key"] == sid.encode() and dl["error_code"] == "transition-impossible"
               and dl["stage"] == "cycle" for dl in dls)


def _attendre(condition, timeout: float, quoi: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {quoi}"
        time.sleep(1)


def d(mois: int) -> datetime:
    return datetime(2026, mois, 1, tzinfo=UTC)


def _params(assures: int) -> Parametres:
    return replace(Parametres(), assures_par_an=assures)


def _jouer(bootstrap: str, debut: datetime, fin: datetime, seed: int, assures: int) -> dict[str, int]:
    return asyncio.run(jouer(bootstrap, debut, fin, 0, _params(assures), seed=seed))


def test_aggregates_equal_a_recount_of_the_raw_topics_even_after_a_worker_crash(hub_factory, sqlite_url, broker):
    # Closed signalements are purged at once (their life-cycle entries gone, their figures archived):
    # the figures must stay equal to the recount through purges, a crash and a rebuild.
    running = hub_factory(sqlite_url, components=("worker",), AIGUILLAGE_PURGE_APRES_JOURS="0",
                          AIGUILLAGE_ECHEANCES_INTERVALLE="2")

    premier = _jouer(broker.bootstrap, d(1), d(3), seed=11, assures=500)  # ~80 assurés in 2 months
    assert premier["signalements"] > 40
    n = _attendre_egalite(broker.bootstrap)
    assert n > 200

    # An entretien after a clôture: the life cycle refuses it (dead letter), the figures do not count it.
    clos = _un_signalement_route(broker.bootstrap)
    t = datetime.now(UTC)
    suivis = [Suivi(suivi_id=f"{kind}-{clos[:8]}", signalement_id=clos, type=kind, survenu_le=t, **extra)
              for kind, extra in (("prise-en-charge", {}), ("cloture", {"issue": "maintien-poste"}),
                                  ("entretien", {"mode_entretien": "de-visu"}))]
    produire(broker.bootstrap, [(topics.SUIVIS, x.cle(), CODEC.encode("Suivi", x.to_avro()), None) for x in suivis])
    _attendre(lambda: _rejete(broker.bootstrap, clos), 60, "the entretien after the clôture dead-lettered")
    _attendre(lambda: "closed signalements purged so far" in (running.hub.log_dir / "worker.log").read_text(), 60,
              "the closed signalements purged")
    _attendre_egalite(broker.bootstrap)

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
