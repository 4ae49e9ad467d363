"""The fast send path applies to every topic the hub writes, and only where Faust would send as is.

`aiguillage bench` measured it (issue 8, streams/raccourcis_faust.py); if a topic's
declaration changed (a serializer, a schema), the hub would quietly fall back to Faust's
slower path: this test says so instead.
"""

from __future__ import annotations

import pytest
from faust.topics import Topic

from aiguillage.codec import AvroCodec
from aiguillage.config import Settings
from streams import agregats
from streams.raccourcis_faust import en_direct
from streams.topology import Topology, make_app


@pytest.fixture(scope="module")
def topo() -> Topology:
    s = Settings(_env_file=None, broker="kafka://127.0.0.1:1", worker_id="aiguillage-test-raccourcis")
    return Topology(make_app(s))


def test_every_topic_the_hub_writes_takes_the_direct_path(topo: Topology) -> None:
    ag = agregats.install(topo.app, AvroCodec(), topo.cycles)
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
