"""The life cycle's packets of Affectations (streams/affectation_packets.py), and where its dead
letters are replayed: pure, no broker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiguillage import rejeu
from aiguillage.bench import rattrapage
from aiguillage.dlq import chiffrer
from aiguillage.domain import Affectation
from aiguillage.kafka import partition_de
from streams import affectation_packets as paquets
from streams.batches import Envois, origines
from tests.pannes_util import affectation

cles_valeurs = st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=300)), max_size=30)


@given(cles_valeurs)
def test_a_packet_reads_back_its_affectations_in_order(items):
    assert paquets.decoder(b"lot-0", paquets.encoder(items)) == items


def test_a_record_that_is_no_packet_is_one_affectation_under_its_own_key():
    framed = b"\x00\x00\x00\x00\x07avro"  # a Confluent frame: a dead letter of the life cycle's, replayed
    assert paquets.decoder(b"sid-1", framed) == [(b"sid-1", framed)]


@pytest.mark.parametrize("coupe", [1, 3, 5, 9])
def test_a_packet_cut_short_is_refused_with_where(coupe):
    entier = paquets.encoder([(b"sid-1", b"\x00abcdef"), (b"sid-2", b"\x00ghij")])
    with pytest.raises(ValueError, match="cut short"):
        paquets.decoder(None, entier[:-coupe])


def test_the_bench_tells_the_packed_affectations_from_the_public_topic():
    prefixe, entree = "run1", "run1.signalements.entrants.service-medical"
    apres = {entree: 10, "run1.affectations": 10, "run1-app-affectations": 1, "run1-app-cycles-changelog": 10}
    assert rattrapage.par_signalement({}, apres, 10, entree, prefixe) == {
        "affectations": 1.0, "cycles-changelog": 1.0, "app-affectations": 0.1}


class _Topic:
    """A topic whose sends are acknowledged at once, or refused for the keys in ``refuse``: the unit
    under test is the batch's bookkeeping, not a broker (the pipeline's tests run on real ones)."""

    def __init__(self, refuse: set[bytes] = frozenset()) -> None:
        self.refuse, self.recus = refuse, []

    async def send(self, key=None, value=None, partition=None, headers=None):
        fut = asyncio.get_running_loop().create_future()
        if key in self.refuse:
            fut.set_exception(RuntimeError("refused"))
        else:
            self.recus.append((key, value, partition))
            fut.set_result(None)
        return fut


class _Codec:
    """Each Affectation's value as the test names it, by signalement_id (the codec has its own tests)."""

    def __init__(self, valeurs: dict[str, bytes]) -> None:
        self.valeurs = valeurs

    def encode(self, schema: str, record: dict) -> bytes:
        assert schema == "Affectation"
        return self.valeurs[record["signalement_id"]]


def test_the_life_cycle_is_sent_only_the_affectations_the_topic_took():
    affs = [Affectation.model_validate(affectation(sid)) for sid in ("sid-1", "sid-2", "sid-3")]
    publique, interne = _Topic(refuse={b"sid-2"}), _Topic()
    topo = SimpleNamespace(app=SimpleNamespace(conf=SimpleNamespace(topic_partitions=4)),
                           affectations=publique, affectations_cycle=interne)
    codec = _Codec({aff.signalement_id: b"\x00avro-%d" % i for i, aff in enumerate(affs)})

    async def lot() -> tuple[list, paquets.SortieAffectations]:
        sortie = paquets.SortieAffectations(topo, codec, Envois(renvoi_s=0))
        for i, aff in enumerate(affs):
            await sortie.envoyer(aff, origine=f"message-{i}")
        return await sortie.confirmer(), sortie

    echecs, sortie = asyncio.run(lot())
    assert [o for o, _ in origines(echecs)] == ["message-1"]  # dead-lettered by the caller, replayed later
    packed = [kv for _, value, _ in interne.recus for kv in paquets.decoder(None, value)]
    assert sorted(packed) == [(b"sid-1", b"\x00avro-0"), (b"sid-3", b"\x00avro-2")]
    assert all(p == partition_de(k, 4) for key, value, p in interne.recus for k, _ in paquets.decoder(key, value))
    assert not sortie.envoyees  # the next batch starts empty


def test_within_a_batch_a_refused_packet_is_told_by_the_next_confirmation():
    affs = [Affectation.model_validate(affectation(sid)) for sid in ("sid-1", "sid-2")]
    publique, interne = _Topic(), _Topic(refuse={b"lot-%d" % partition_de(b"sid-1", 4)})
    topo = SimpleNamespace(app=SimpleNamespace(conf=SimpleNamespace(topic_partitions=4)),
                           affectations=publique, affectations_cycle=interne)
    codec = _Codec({"sid-1": b"\x00a", "sid-2": b"\x00b"})

    async def lot() -> tuple[list, list]:
        sortie = paquets.SortieAffectations(topo, codec, Envois(renvoi_s=0))
        await sortie.envoyer(affs[0], origine="message-0")
        premiere = await sortie.confirmer(fin=False)  # its packet sent, not awaited
        await sortie.envoyer(affs[1], origine="message-1")
        return premiere, await sortie.confirmer()

    premiere, derniere = asyncio.run(lot())
    assert premiere == []
    assert [o for o, _ in origines(derniere)] == ["message-0"]  # its team message: dead-lettered, replayed


class _Publieur:
    def __init__(self) -> None:
        self.envoyes: list[tuple[str, bytes, bytes | None]] = []

    async def send_raw(self, topic, value, key=None, durable=False, headers=None):
        self.envoyes.append((topic, value, key))


@pytest.mark.parametrize(("ecrit_dans", "rejoue_dans"), [
    ("affectations", "aiguillage-affectations"),  # dead-lettered when the life cycle read the public topic
    ("aiguillage-affectations", "aiguillage-affectations"),
    ("suivis", "suivis"),
])
def test_a_life_cycle_dead_letter_goes_back_where_the_life_cycle_reads(ecrit_dans, rejoue_dans):
    cle = bytes(32)
    lettre = {"stage": "cycle", "source": "affectations", "original_topic": ecrit_dans, "original_key": b"sid-1",
              "payload_chiffre": chiffrer(cle, b"\x00avro")}
    publieur = _Publieur()
    bilan = asyncio.run(rejeu.rejouer([lettre], publieur, cle, b"k" * 32, app_id="aiguillage"))
    assert bilan.internes == 1 and publieur.envoyes == [(rejoue_dans, b"\x00avro", b"sid-1")]
