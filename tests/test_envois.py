"""An output the broker never acknowledges is not lost: the record that made it is dead-lettered
(the worker goes on), or, if even its dead letter is refused, the worker stops without
acknowledging its batch and the next one routes it. On a real Apache Kafka, whose topics refuse
records over their ``max.message.bytes``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from aiguillage import rejeu, topics
from aiguillage.domain import Source
from aiguillage.kafka import Publieur
from aiguillage.kafka_local import LocalKafka
from aiguillage.topics import create_topics
from tests.kafka_util import read_topic
from tests.pannes_util import CODEC, attendre, isolated_hub, produire_signalements, signalement

pytestmark = pytest.mark.kafka


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[LocalKafka]:
    with LocalKafka(tmp_path / "kafka") as k:
        asyncio.run(create_topics(k.bootstrap, partitions=4))
        yield k


def taille_max(bootstrap: str, **par_topic: int) -> None:
    """Set ``max.message.bytes`` of the topics named (``affectations=100``)."""
    async def alter() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.alter_configs([
                ConfigResource(ConfigResourceType.TOPIC, topic.replace("_", "."), {"max.message.bytes": str(n)})
                for topic, n in par_topic.items()])
        finally:
            await admin.close()

    asyncio.run(alter())


def lettres(bootstrap: str) -> list[dict]:
    return [CODEC.decode("DeadLetter", r.value) for r in read_topic(bootstrap, topics.REJETES)]


def routes(bootstrap: str) -> set[str]:
    return {r.key.decode() for r in read_topic(bootstrap, topics.AFFECTATIONS)}


def test_an_affectation_never_acknowledged_dead_letters_the_team_message_and_the_worker_goes_on(
    kafka, cles, sqlite_url, tmp_path
):
    hub = isolated_hub(kafka, sqlite_url, cles, tmp_path / "log")
    hub.hub.env["AIGUILLAGE_RESEND_TIMEOUT"] = "2"
    taille_max(kafka.bootstrap, affectations=200)  # an Affectation is ~1 KB: every one is refused
    hub.hub.start("worker")
    try:
        s = signalement(Source.CPAM, f"ENVOI-{uuid.uuid4().hex[:6]}", "ab" * 32)
        produire_signalements(kafka.bootstrap, [s])
        attendre(lambda: any(d["stage"] == "equipes" and d["error_code"] == "envoi-impossible"
                             for d in lettres(kafka.bootstrap)), 120, "the team message dead-lettered", hub)
        (lettre,) = [d for d in lettres(kafka.bootstrap) if d["stage"] == "equipes"]
        assert lettre["original_topic"].endswith("-equipes") and "never acknowledged" in lettre["reason"]
        assert not hub.hub.dead(), "the worker went on"
        assert s["signalement_id"] not in routes(kafka.bootstrap)
        # The topic takes Affectations again: the dead letter, replayed, routes the signalement.
        taille_max(kafka.bootstrap, affectations=1_000_000)
        bilan = asyncio.run(rejouer_une(kafka.bootstrap, lettre, cles))
        assert bilan.internes == 1 and not bilan.echecs, bilan
        attendre(lambda: s["signalement_id"] in routes(kafka.bootstrap), 120, "the replayed message routed", hub)
    finally:
        hub.hub.stop_all()


async def rejouer_une(bootstrap: str, lettre: dict, cles: dict[str, str]) -> rejeu.Rejeu:
    publieur = Publieur(bootstrap)
    try:
        return await rejeu.rejouer([lettre], publieur, bytes.fromhex(cles["AIGUILLAGE_DLQ_KEY"]),
                                   cles["AIGUILLAGE_PSEUDONYM_KEY"].encode())
    finally:
        await publieur.close()


def test_when_even_the_dead_letter_is_refused_the_worker_stops_unacknowledged_and_the_next_one_routes_it(
    kafka, cles, sqlite_url, tmp_path
):
    hub = isolated_hub(kafka, sqlite_url, cles, tmp_path / "log")
    hub.hub.env["AIGUILLAGE_RESEND_TIMEOUT"] = "2"
    taille_max(kafka.bootstrap, affectations=200, signalements_rejetes=200)
    hub.hub.start("worker")
    s = signalement(Source.CPAM, f"ARRET-{uuid.uuid4().hex[:6]}", "cd" * 32)
    try:
        produire_signalements(kafka.bootstrap, [s])
        attendre(lambda: bool(hub.hub.dead()), 120, "the worker to stop")
        assert hub.hub.processes["worker"].returncode == 75 and "batch unacknowledged" in hub.log("worker")
        taille_max(kafka.bootstrap, affectations=1_048_588, signalements_rejetes=1_048_588)
        hub.hub.processes.pop("worker")
        hub.hub.start("worker")
        deadline = time.monotonic() + 120
        while s["signalement_id"] not in routes(kafka.bootstrap):
            assert time.monotonic() < deadline, hub.logs()
            time.sleep(1)
    finally:
        hub.hub.stop_all()
