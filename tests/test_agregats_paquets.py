"""The figures' first stage sends its changed values in packets (streams/figures.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiguillage.kafka import partition_de
from streams import batches
from streams.figures import paquets_partiels

cles = st.text(alphabet="abcdefghij|=,_0123456789", min_size=1, max_size=30)
sales = st.sets(st.tuples(st.integers(min_value=0, max_value=7), cles), max_size=400)


@given(sales, st.integers(min_value=1, max_value=8))
def test_each_changed_figure_is_in_one_packet_with_all_its_sources_bound_for_its_key_s_partition(s: set[tuple[int, str]], n: int) -> None:
    paquets = paquets_partiels(s, n)
    vus = [(p, c) for _, cs in paquets for c, ps in cs.items() for p in ps]
    assert sorted(vus) == sorted(s)  # every changed (partition, figure) once, nothing else
    cles = [c for _, cs in paquets for c in cs]
    assert len(cles) == len(set(cles)) == len({c for _, c in s})  # a figure in one packet, all its sources with it
    for dest, cs in paquets:
        assert 0 < len(cs) <= batches.PAQUET
        # Stage 2 keeps a figure's entry in the partition of its key: the packet must go there.
        assert all(partition_de(c.encode(), n) == dest for c in cs)


def test_partition_de_is_kafka_s_default_partitioner() -> None:
    # Where aiokafka (like the Java client) sends a keyed record with no partition given.
    from aiokafka.partitioner import DefaultPartitioner

    for cle in (b"a", b"equipe-31-toulouse", b"nb_signalements|courant|courant|axe=PDP"):
        toutes = list(range(12))
        assert partition_de(cle, 12) == DefaultPartitioner()(cle, toutes, toutes)


def test_stage_2_reads_the_packets_of_every_format_and_writes_an_entry_once_per_packet() -> None:
    """Today's packets (every source of the sending worker per key), those of an older worker (one
    source a packet, or one value a record) still on the topic, and a resend that writes nothing."""
    import json
    from types import SimpleNamespace

    from streams.figures import Agregation

    class Table(dict):
        ecritures = 0

        def __setitem__(self, cle, valeur):
            Table.ecritures += 1
            super().__setitem__(cle, valeur)

    etage = SimpleNamespace(totaux=Table(), totaux_sales=set())

    def recu(value: dict, key: bytes = b"*>1") -> None:
        message = SimpleNamespace(value=json.dumps(value).encode(), key=key, partition=1)
        Agregation.cumuler(etage, SimpleNamespace(message=message))  # type: ignore[arg-type]

    recu({"ps": {"a": {"0": 3, "2": 4}, "b": {"0": 1}}})
    assert etage.totaux == {"a": {"p": 1, "v": {"0": 3, "2": 4}}, "b": {"p": 1, "v": {"0": 1}}}
    assert Table.ecritures == 2  # one per key, not one per key and source
    recu({"p": 3, "vs": {"a": 5}})  # an older worker's packet: one source
    recu({"p": 2, "v": 7}, key=b"b")  # the oldest format: one value keyed by its figure
    assert etage.totaux == {"a": {"p": 1, "v": {"0": 3, "2": 4, "3": 5}}, "b": {"p": 1, "v": {"0": 1, "2": 7}}}
    recu({"ps": {"a": {"0": 3}}})  # the same value again
    assert Table.ecritures == 4 and etage.totaux_sales == {"a", "b"}
