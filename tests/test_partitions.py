"""The workers' key partitioning is Kafka's default: the same partition as aiokafka's (and the
Java client's) murmur2 for every key, only hashed in C."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given
from hypothesis import strategies as st

from aiguillage.kafka import Murmur2Partitioner, partition_de


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=64))
def test_every_key_goes_where_the_default_partitioner_sends_it(cle, n):
    assert partition_de(cle, n) == (murmur2(cle) & 0x7FFFFFFF) % n
    partitions = list(range(n))
    assert Murmur2Partitioner()(cle, partitions, partitions) == DefaultPartitioner()(cle, partitions, partitions)


def test_a_record_without_a_key_goes_to_an_available_partition():
    assert Murmur2Partitioner()(None, [0, 1, 2, 3], [2]) == 2
    assert Murmur2Partitioner()(None, [0, 1], []) in (0, 1)


def test_the_workers_producers_use_it():
    from aiguillage.config import Settings
    from streams.topology import make_app

    app = make_app(Settings(broker="kafka://localhost:9092", worker_id="partitions-test"))
    assert isinstance(app.conf.producer_partitioner, Murmur2Partitioner)
