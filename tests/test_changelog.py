"""streams/changelog.py on Apache Kafka: the tables' writes reach their changelog as Faust would
write them, in order, each partition's last offset recorded, and a refused batch fails the flush
that a commit waits for (the patch itself, `changelog-batches`, is in streams/faust_patches.py)."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from aiguillage.config import Settings
from streams import faust_patches
from streams.changelog import ChangelogRefuse, Journal
from streams.topology import Topology, make_app
from tests.kafka_util import read_topic

pytestmark = pytest.mark.kafka


class Offsets:
    """What the journal records where Faust's callback wrote RocksDB's changelog offset."""

    def __init__(self) -> None:
        self.par_partition: dict[int, int] = {}

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.par_partition[tp.partition] = offset


@pytest.fixture(scope="module")
def topo() -> Topology:
    s = Settings(_env_file=None, broker="kafka://127.0.0.1:1", worker_id=f"essai-journal-{uuid.uuid4().hex[:6]}")
    return Topology(make_app(s))


def _table(topo: Topology) -> SimpleNamespace:
    """The hub's `dossiers` table as the journal sees it (its changelog topic and serializers),
    with its store's offset callback recorded."""
    t = topo.dossiers
    return SimpleNamespace(changelog_topic=t.changelog_topic, key_serializer=t.key_serializer,
                           value_serializer=t.value_serializer, data=Offsets())


async def _journal(bootstrap: str, topic: str, config: dict[str, str] | None = None) -> tuple[Journal, AIOKafkaProducer]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1, topic_configs=config or {})])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    app = SimpleNamespace(producer=SimpleNamespace(started=True, _producer=producer), in_transaction=False)
    return Journal(app), producer


def test_writes_reach_the_changelog_as_faust_writes_them_in_order_with_each_partitions_offset(kafka, topo):
    table = _table(topo)
    topic = table.changelog_topic.get_topic_name()

    async def scenario() -> dict[int, int]:
        journal, producer = await _journal(kafka.bootstrap, topic)
        try:
            journal.ajouter(table, "s-1", {"equipe": "31-toulouse-PDP", "n": 1}, 0)
            journal.ajouter(table, "s-2", {"equipe": "31-toulouse-SPS"}, 1)
            await asyncio.sleep(0.05)  # the journal's own task hands these over meanwhile
            journal.ajouter(table, "s-1", {"equipe": "31-toulouse-PDP", "n": 2, "note": "é"}, 0)
            journal.ajouter(table, "s-2", None, 1, tombstone=True)
            for i in range(3000):  # more than one producer batch on partition 0 (256 KB is not the limit here)
                journal.ajouter(table, f"x-{i}", {"v": "a" * 100}, 0)
            await journal.confirmer()
            assert journal.envoyes == [] and not journal.lots and not journal.pleins
            return table.data.par_partition
        finally:
            await producer.stop()

    offsets = asyncio.run(scenario())
    records = read_topic(kafka.bootstrap, topic)
    p0 = [(r.key, r.value) for r in records if r.partition == 0]
    p1 = [(r.key, r.value) for r in records if r.partition == 1]
    # The bytes Faust's own path would write: the table's JSON, key and value, through its changelog topic.
    codec = table.changelog_topic
    attendu = codec.prepare_value({"equipe": "31-toulouse-PDP", "n": 2, "note": "é"}, "json", None, None)[0]
    assert p0[:2] == [(b'"s-1"', b'{"equipe":"31-toulouse-PDP","n":1}'), (b'"s-1"', attendu)]
    assert [k for k, _ in p0[2:]] == [b'"x-%d"' % i for i in range(3000)]
    assert p1 == [(b'"s-2"', b'{"equipe":"31-toulouse-SPS"}'), (b'"s-2"', None)]  # a removal is a tombstone
    assert offsets == {0: len(p0) - 1, 1: 1}


def test_a_changelog_batch_the_broker_refuses_fails_the_flush_a_commit_waits_for(kafka, topo):
    """Faust commits only after the producer's flush; the flush then raises, and every later one,
    so no offset is committed past a table write its changelog does not have."""
    table = _table(topo)
    topic = f"essai-journal-refus-{uuid.uuid4().hex[:8]}"
    table.changelog_topic = topo.app.topic(topic, key_serializer="json", value_serializer="json")

    async def scenario() -> str:
        journal, producer = await _journal(kafka.bootstrap, topic, {"max.message.bytes": "1024"})
        try:
            journal.ajouter(table, "petit", {"v": 1}, 1)
            journal.ajouter(table, "grand", {"v": "a" * 5000}, 0)
            with pytest.raises(ChangelogRefuse) as refus:
                await journal.confirmer()
            journal.ajouter(table, "apres", {"v": 2}, 1)
            with pytest.raises(ChangelogRefuse) as encore:  # for good: a clean stop's commit would skip the lost write
                await journal.confirmer()
            assert encore.value is refus.value
            return str(refus.value)
        finally:
            await producer.stop()

    message = asyncio.run(scenario())
    assert f"{topic}[0]" in message and "MessageSizeTooLarge" in message and f"{topic}[1]" not in message
    assert table.data.par_partition == {1: 1}  # what was acknowledged is still recorded
    assert [r.key for r in read_topic(kafka.bootstrap, topic)] == [b'"petit"', b'"apres"']


def test_every_table_of_the_hub_takes_the_journal_once_its_producer_runs_outside_transactions(topo):
    """A table that picks its partition with the partitioner, or expires windowed keys, keeps
    Faust's path: none of the hub's does, so all of their writes are batched."""
    from aiguillage.codec import AvroCodec
    from streams import figures
    from streams.dead_letters import DeadLetters

    figures.install(topo.app, AvroCodec(), topo.cycles, DeadLetters(topo.rejetes, AvroCodec(), b"k" * 32))
    tables = list(topo.app.tables.values())
    assert {"assures", "dossiers", "assures_equipe", "cycles", "agregats_totaux"} <= {t.name for t in tables}
    for t in tables:
        assert not t.use_partitioner and not t._should_expire_keys(), t.name
    assert faust_patches._direct(tables[0]) is None  # this app's producer never started: Faust's path

    class App:
        def __init__(self, started: bool, in_transaction: bool) -> None:
            self.producer = SimpleNamespace(started=started, _producer=object() if started else None)
            self.in_transaction = in_transaction

    running = App(True, False)
    assert Journal.de(running) is Journal.de(running) is not None
    assert Journal.de(App(True, True)) is None and Journal.de(App(False, False)) is None


def test_a_batch_the_producer_will_not_take_fails_the_flush_too(kafka, topo):
    """A write to a partition its changelog does not have (a changelog made with fewer partitions
    than the worker's): the producer refuses the batch before any broker sees it, and the flush
    says so instead of letting a commit pass over it."""
    table = _table(topo)
    topic = f"essai-journal-partition-{uuid.uuid4().hex[:8]}"
    table.changelog_topic = topo.app.topic(topic, key_serializer="json", value_serializer="json")

    async def scenario() -> str:
        journal, producer = await _journal(kafka.bootstrap, topic)  # 2 partitions
        try:
            journal.ajouter(table, "ailleurs", {"v": 1}, 7)
            journal.ajouter(table, "ici", {"v": 2}, 1)
            with pytest.raises(ChangelogRefuse) as refus:
                await journal.confirmer()
            return str(refus.value)
        finally:
            await producer.stop()

    message = asyncio.run(scenario())
    assert f"changelog {topic}[7]: the producer did not take a batch" in message
    assert [r.key for r in read_topic(kafka.bootstrap, topic)] == [b'"ici"']
