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
def test_each_changed_figure_is_in_one_packet_bound_for_its_key_s_partition(s: set[tuple[int, str]], n: int) -> None:
    paquets = paquets_partiels(s, n)
    vus = [(p, c) for p, _, cs in paquets for c in cs]
    assert sorted(vus) == sorted(s)  # every changed (partition, figure) once, nothing else
    for p, dest, cs in paquets:
        assert 0 < len(cs) <= batches.PAQUET
        # Stage 2 keeps a figure's entry in the partition of its key: the packet must go there.
        assert all(partition_de(c.encode(), n) == dest for c in cs)


def test_partition_de_is_kafka_s_default_partitioner() -> None:
    # Where aiokafka (like the Java client) sends a keyed record with no partition given.
    from aiokafka.partitioner import DefaultPartitioner

    for cle in (b"a", b"equipe-31-toulouse", b"nb_signalements|courant|courant|axe=PDP"):
        toutes = list(range(12))
        assert partition_de(cle, 12) == DefaultPartitioner()(cle, toutes, toutes)
