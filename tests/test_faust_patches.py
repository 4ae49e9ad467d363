"""streams/faust_patches.py: each patch alone, the shape checks that stop a worker whose Faust
changed, and the fast send path on every topic the hub writes (if a topic's declaration changed,
a serializer or a schema, the hub would quietly fall back to Faust's slower path: this says so)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.topics import Topic
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


