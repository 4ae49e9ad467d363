"""A three-node Apache Kafka (replication 3, min.insync.replicas 2) losing one broker, then another,
while 10,000 signalements come in through the gateway: every one answered 202 ends in SQL exactly
once. A 202 is the broker's acks=all: one node down leaves two replicas in sync, so nothing the
gateway acknowledged can be lost with it.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiguillage.kafka_local import LocalKafka
from aiguillage.topics import create_topics
from tests.conftest import nir_aleatoire
from tests.pannes_util import attendre, graine, ids_en_base, isolated_hub

# Three Kafka nodes started, 10,000 posts, two nodes killed and restarted in turn: on a loaded
# 2-core machine this outlasts the suite's 300 s per test (it once timed out starting its nodes).
pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(600)]
N = 10_000
PARALLEL = 24  # requests in flight, as a few partner systems would send


@pytest.fixture
def grappe(tmp_path: Path) -> Iterator[LocalKafka]:
    with LocalKafka(tmp_path / "kafka", nodes=3) as cluster:
        asyncio.run(create_topics(cluster.bootstrap, partitions=4, replication=3))
        yield cluster


class Pannes:
    """Kills one node, brings it back, then another, as the answers come in. The posts wait at
    ``gates`` for the node to be back, so that each crash falls in the middle of the stream."""

    def __init__(self, cluster: LocalKafka, rng: random.Random) -> None:
        self.cluster = cluster
        self.victims = rng.sample([n.node_id for n in cluster.layout.nodes], 2)
        self.log: list[str] = []
        self.back = [asyncio.Event(), asyncio.Event()]

    async def run(self, answered: Counter[str]) -> None:
        for i, victim in enumerate(self.victims):
            await self._when(answered, 1_500 + 3_500 * i)
            await asyncio.to_thread(self.cluster.kill, victim)
            self.log.append(f"node {victim} SIGKILLed after {answered.total()} answers")
            await self._when(answered, 3_000 + 3_500 * i)
            await asyncio.to_thread(self.cluster.start_node, victim)
            await asyncio.to_thread(self.cluster.wait_in_sync)
            self.log.append(f"node {victim} back and in sync after {answered.total()} answers")
            self.back[i].set()

    async def gate(self, done: int) -> None:
        for i, event in enumerate(self.back):
            if done >= 4_500 + 3_500 * i:
                await event.wait()

    @staticmethod
    async def _when(answered: Counter[str], n: int) -> None:
        while answered.total() < n:
            await asyncio.sleep(0.05)


def test_ten_thousand_posts_with_two_brokers_killed_in_turn_end_in_sql_exactly_once(
    grappe, postgres_url, cles, jetons, tmp_path, exemple_cpam
):
    hub = isolated_hub(grappe, postgres_url, cles, tmp_path / "log", jetons.path)
    hub.hub.env["AIGUILLAGE_REPLICATION"] = "3"  # Faust's changelogs too
    hub.hub.env["AIGUILLAGE_LIMITE_PARTENAIRE"] = "0"  # one CPAM token posting 10,000 at once: a load test, not abuse
    for name in ("worker", "sink-affectations", "gateway"):
        hub.hub.start(name)
    try:
        attendre(lambda: _healthy(hub.base_url), 60, "the gateway", hub)
        rng = graine()
        pannes = Pannes(grappe, rng)
        accepted, answered = asyncio.run(_post_all(hub.base_url, exemple_cpam, jetons, pannes, rng))
        print("\n".join(pannes.log))
        print(f"answers: {dict(answered)}")
        assert len(pannes.log) == 4, pannes.log  # both crashes fell inside the stream
        assert answered["202"] >= N * 0.9  # a crash costs a few seconds of 503s, not the stream

        attendre(lambda: set(accepted) <= set(ids_en_base(postgres_url)), 300,
                 "every acknowledged signalement in SQL", hub)
        rows = Counter(ids_en_base(postgres_url))
        assert all(rows[sid] == 1 for sid in accepted)
        assert not hub.hub.dead(), hub.hub.dead()
    finally:
        hub.hub.stop_all()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def _post_all(base: str, exemple: dict, jetons, pannes: Pannes, rng: random.Random
                    ) -> tuple[set[str], Counter[str]]:
    """Post N CPAM signalements, PARALLEL at a time; a 503 is retried like a partner would (the
    same reference: the same signalement). Return the ids answered 202, and every answer's status."""
    accepted: set[str] = set()
    answered: Counter[str] = Counter()
    run = uuid.uuid4().hex[:8]
    bodies = [{**exemple, "reference": f"GRAPPE-{run}-{i}",
               "assure": {**exemple["assure"], "nir": nir_aleatoire(rng)}} for i in range(N)]
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def poster(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            await pannes.gate(len(accepted))
            for attempt in range(8):
                try:
                    resp = await client.post(f"{base}/v1/signalements/cpam", json=body, headers=jetons.entete("cpam"))
                except httpx.HTTPError:
                    answered["no answer"] += 1
                    await asyncio.sleep(1)
                    continue
                answered[str(resp.status_code)] += 1
                if resp.status_code == 202:
                    accepted.add(resp.json()["signalement_id"])
                    break
                assert resp.status_code == 503, resp.text  # nothing else is acceptable here
                await asyncio.sleep(min(0.5 * 2**attempt, 5))

    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=PARALLEL)) as client:
        killer = asyncio.create_task(pannes.run(answered))
        await asyncio.gather(*(poster(client) for _ in range(PARALLEL)))
        await killer
    print(f"{N} posted in {time.monotonic() - started:.0f} s")
    return accepted, answered
