"""streams/faust_patches.py: each patch alone, the shape checks that stop a worker whose Faust
changed, and the fast send path on every topic the hub writes (if a topic's declaration changed,
a serializer or a schema, the hub would quietly fall back to Faust's slower path: this says so)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.topics import Topic
from mode.services import Service
from yarl import URL

from aiguillage.broker_profile import KAFKA
from aiguillage.codec import AvroCodec
from aiguillage.config import Settings
from streams import faust_patches, figures
from streams.dead_letters import DeadLetters
from streams.faust_patches import en_direct
from streams.topology import Topology, make_app


@pytest.fixture(scope="module")
def topo() -> Topology:
    s = Settings(_env_file=None, broker="kafka://127.0.0.1:1", worker_id="aiguillage-test-raccourcis")
    return Topology(make_app(s))


def test_every_topic_the_hub_writes_takes_the_direct_path(topo: Topology) -> None:
    ag = figures.install(topo.app, AvroCodec(), topo.cycles, DeadLetters(topo.rejetes, AvroCodec(), b"k" * 32))
    ecrits = [t for t in vars(topo).values() if isinstance(t, Topic) and len(t.topics) == 1]
    ecrits += [*topo.retours.values(), ag.partiels_topic, ag.agregats_topic]
    noms = {t.topics[0] for t in ecrits}
    for attendu in ("affectations", "signalements.rejetes", "agregats", "retours.cpam", "suivis"):
        assert attendu in noms, f"{attendu} is not a topic of the worker (topics: {sorted(noms)})"
    assert any(n.endswith("-equipes") for n in noms) and any(n.endswith("-signalements") for n in noms)
    lents = [t.topics[0] for t in ecrits if not en_direct(t, b"cle", b"valeur")]
    assert not lents, f"these topics would take Faust's slow send path: {lents}"


def test_what_faust_would_transform_keeps_faust_path(topo: Topology) -> None:
    app = topo.app
    json_topic = app.topic("essai-json", value_serializer="json")
    modele = app.topic("essai-modele", value_type=dict)
    brut = app.topic("essai-brut")
    assert en_direct(brut, b"k", b"v") and en_direct(brut, None, b"v")
    assert not en_direct(brut, b"k", {"a": 1})  # a value Faust would serialize
    assert not en_direct(brut, "k", b"v")
    assert not en_direct(json_topic, b"k", b"v")
    assert not en_direct(modele, b"k", b"v")
    assert not en_direct(app.topic("a", "b"), b"k", b"v")  # several topics: Faust refuses to send


# -- the patches' own checks and each patch alone --------------------------------------------

def test_every_patch_finds_the_shape_it_was_written_for_in_the_pinned_versions():
    assert faust_patches.check() == []


def test_a_target_that_changed_shape_stops_the_worker_with_a_message_naming_it(monkeypatch):
    class Ailleurs:
        def cible(self, autre):
            return autre

    patch = faust_patches.Patch("essai", Ailleurs, "cible", ("self", "comme-avant"), lambda original: original)
    with pytest.raises(faust_patches.FaustPatchError, match=r"essai: .*Ailleurs\.cible\('self', 'autre'\) is not"):
        faust_patches.install(KAFKA, [patch])
    disparue = faust_patches.Patch("partie", Ailleurs, "disparue", ("self",), lambda original: original)
    assert faust_patches.check([disparue]) == ["partie: Ailleurs.disparue no longer exists"]


def test_installing_twice_patches_once(monkeypatch):
    class Cible:
        def f(self, x):
            return x

    appels = []
    patch = faust_patches.Patch("deux-fois", Cible, "f", ("self", "x"),
                                lambda original: lambda self, x: appels.append(x) or original(self, x))
    monkeypatch.setattr(faust_patches, "_originals", {})
    faust_patches.install(KAFKA, [patch])
    faust_patches.install(KAFKA, [patch])
    assert Cible().f(3) == 3 and appels == [3]


def test_recovery_resumes_stream_partitions_only_after_the_seek_and_the_flow():
    ordre: list[str] = []

    class Consumer:
        def resume_partitions(self, tps):
            ordre.append(f"resume {tps}")

    app = SimpleNamespace(consumer=Consumer(), consumer_generation_id=7)

    async def original(self, generation_id):
        self.app.consumer.resume_partitions("streams")
        ordre.append("seek")
        ordre.append("resume flow")

    patched = faust_patches._resume_after_seek(original)
    asyncio.run(patched(SimpleNamespace(app=app), 7))
    assert ordre == ["seek", "resume flow", "resume streams"]
    ordre.clear()
    asyncio.run(patched(SimpleNamespace(app=app), 6))  # a generation that is no longer ours: not resumed
    assert ordre == ["seek", "resume flow"]


def test_a_fetch_takes_a_snapshot_of_the_active_partitions_and_none_when_empty():
    vus = []

    async def original(self, consumer, active, timeout=None, max_records=None):
        vus.append(active)
        return {"x": 1}

    patched = faust_patches._fetch_snapshot(original)
    actives = {"a", "b"}
    assert asyncio.run(patched(None, None, actives, timeout=0.01)) == {"x": 1}
    actives.add("c")  # the live set changes after the fetch started: the fetch keeps its snapshot
    assert vus == [frozenset({"a", "b"})]
    assert asyncio.run(patched(None, None, set(), timeout=0.01)) == {} and len(vus) == 1
    assert asyncio.run(patched(None, None, None)) == {"x": 1} and vus[-1] is None


def test_the_producer_fast_path_hands_over_a_started_producer_outside_transactions():
    producer = SimpleNamespace(started=True)
    topic = SimpleNamespace(app=SimpleNamespace(producer=producer, in_transaction=False))

    async def original(self):
        return "faust's"

    patched = faust_patches._producer_fast_path(original)
    assert asyncio.run(patched(topic)) is producer
    topic.app.in_transaction = True
    assert asyncio.run(patched(topic)) == "faust's"


def test_the_true_end_offsets_patch_corrects_what_the_broker_announces(monkeypatch):
    async def original(self, partitions):
        return dict.fromkeys(partitions, 10)

    async def true_ends(bootstrap, announced):
        assert bootstrap == "127.0.0.1:9"
        return {tp: 12 for tp in announced}

    monkeypatch.setattr(faust_patches, "true_ends", true_ends)
    thread = SimpleNamespace(consumer=SimpleNamespace(in_transaction=False),
                             transport=SimpleNamespace(url=[URL("kafka://127.0.0.1:9")], default_port=9092))
    assert asyncio.run(faust_patches._true_end_offsets(original)(thread, ["p0"])) == {"p0": 12}



def _seek_to_committed_unpatched():
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    return faust_patches._originals.get("seek-rewinds-uncommitted", AIOKafkaConsumerThread.seek_to_committed)


def _stand_in_thread(consumer, acking: set[str], reset: str = "earliest"):
    """What the patch reads of Faust's consumer thread, over a consumer (the real thread's
    ``call_thread`` runs on the thread's own loop; here on the test's)."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    async def call_thread(fun, *args):
        return await fun(*args)

    thread = SimpleNamespace(call_thread=call_thread, _ensure_consumer=lambda: consumer,
                             app=SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=reset),
                                                 topics=SimpleNamespace(acks_enabled_for=acking.__contains__)))
    thread.seek_to_beginning = lambda *tps: AIOKafkaConsumerThread.seek_to_beginning(thread, *tps)
    return thread


def test_the_seek_after_a_rebalance_rewinds_a_stream_partition_with_nothing_committed():
    """What the patch decides: committed partitions are left to aiokafka; a stream partition with
    nothing committed (None, or 0) goes back to its beginning; a changelog (no acks) and an app
    that resets to "latest" are left alone; Faust reads the committed offsets back unchanged."""
    from aiokafka import TopicPartition

    a, b, c, log = (TopicPartition(t, n) for t, n in (("entrants", 0), ("entrants", 1), ("entrants", 2), ("changelog", 0)))

    class Consumer:
        def __init__(self):
            self.debuts = []

        async def seek_to_committed(self):
            return {a: None, b: 0, c: 7, log: None}

        async def seek_to_beginning(self, *tps):
            self.debuts.extend(tps)

    consumer = Consumer()
    patched = faust_patches._rewind_uncommitted(_seek_to_committed_unpatched())
    assert asyncio.run(patched(_stand_in_thread(consumer, {"entrants"}))) == {a: None, b: 0, c: 7, log: None}
    assert consumer.debuts == [a, b]
    consumer.debuts.clear()
    asyncio.run(patched(_stand_in_thread(consumer, {"entrants"}, reset="latest")))
    assert consumer.debuts == []


@pytest.mark.kafka
def test_on_kafka_a_partition_never_committed_is_read_again_from_its_start_after_the_seek(kafka):
    """The loss the patch closes, on Apache Kafka: records fetched from a partition with nothing
    committed, then dropped (Faust drops what it fetched while its flow was stopped, and the old
    generation's queues), were never fetched again: aiokafka's seek_to_committed leaves the
    position past them; the patched seek brings it back to the first record."""
    import uuid

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"essai-rembobinage-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic, 0)

    async def scenario() -> tuple[int, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(topic, 1, 1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
        await producer.start()
        for i in range(3):
            await producer.send_and_wait(topic, b"%d" % i, partition=0)
        await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap, group_id=topic,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            fetched = sum(len(r) for r in (await consumer.getmany(timeout_ms=10_000)).values())
            assert fetched == 3  # ... and dropped, as Faust drops them
            thread = _stand_in_thread(consumer, {topic})
            await _seek_to_committed_unpatched()(thread)
            unpatched = await consumer.position(tp)
            await faust_patches._rewind_uncommitted(_seek_to_committed_unpatched())(thread)
            return unpatched, await consumer.position(tp)
        finally:
            await consumer.stop()

    assert asyncio.run(scenario()) == (3, 0), "(position after aiokafka's seek, after the patched one)"


class _Consumer(Service):
    """A mode service, as Faust's consumer is: its stopped and crashed flags, mode's wait_first."""


def _wait_first():
    appels = []

    async def original(self, *coros, timeout=None):
        appels.append(coros)
        return await Service.wait_first(self, *coros, timeout=timeout)

    return faust_patches._drain_steps_first(original), appels


def test_a_delivery_that_does_not_wait_is_done_in_the_drain_s_own_task_and_the_flow_s_wait_closed():
    wait_first, appels = _wait_first()
    file: asyncio.Queue = asyncio.Queue(maxsize=2)

    async def livrer(x):
        await file.put(x)
        return x

    async def scenario():
        service = _Consumer()
        flux = asyncio.Event()
        taches = len(asyncio.all_tasks())
        attente = flux.wait()
        resultat = await wait_first(service, livrer(1), attente)
        assert len(asyncio.all_tasks()) == taches and appels == []
        assert attente.cr_frame is None  # closed, never awaited
        return resultat

    resultat = asyncio.run(scenario())
    assert (resultat.results, resultat.stopped) == ([1], False)


def test_a_delivery_that_waits_goes_on_under_mode_s_wait_and_the_flow_s_suspension_still_interrupts_it():
    wait_first, appels = _wait_first()
    etapes = []

    async def livrer(file, x):
        try:
            await file.put(x)  # full: it waits for room
            etapes.append(f"livré {x}")
        except asyncio.CancelledError:
            etapes.append(f"interrompu {x}")
            raise

    async def scenario():
        consumer = _Consumer()
        file: asyncio.Queue = asyncio.Queue(maxsize=1)
        file.put_nowait(0)
        suspendu = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, file.get_nowait)  # room, later
        await wait_first(consumer, livrer(file, 1), suspendu.wait())
        assert list(file._queue) == [1] and len(appels) == 1
        asyncio.get_running_loop().call_later(0.05, suspendu.set)  # a rebalance, before any room
        resultat = await wait_first(consumer, livrer(file, 2), suspendu.wait())
        assert list(file._queue) == [1] and resultat.results == [True]

    asyncio.run(scenario())
    assert etapes == ["livré 1", "interrompu 2"]


def test_a_delivery_that_fails_at_once_raises_as_under_mode_s_wait():
    wait_first, _ = _wait_first()

    async def livrer():
        raise ValueError("mauvais message")

    async def scenario():
        attente = asyncio.Event().wait()
        with pytest.raises(ValueError, match="mauvais message"):
            await wait_first(_Consumer(), livrer(), attente)
        assert attente.cr_frame is None

    asyncio.run(scenario())


def test_with_a_timeout_or_a_stopped_service_mode_s_wait_runs_unchanged():
    wait_first, appels = _wait_first()

    async def scenario():
        service = _Consumer()
        await wait_first(service, asyncio.sleep(0), timeout=1.0)
        service._stopped.set()
        assert (await wait_first(service, asyncio.sleep(0))).stopped

    asyncio.run(scenario())
    assert len(appels) == 2
