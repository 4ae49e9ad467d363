"""The true end offsets of partitions on the embedded broker, whose ListOffsets answers short.

Tansu answers ListOffsets(latest) with the base offset of the last record batch + 1, not the
true end offset: the other records of that batch would be missed by whoever stops there. A
fetch is right: it returns that last batch whole, and its records (and high-water mark) give
the true end. On Apache Kafka both answers agree, and nothing calls this there.

Used by the worker's recovery on the embedded broker (``streams/faust_patches.py``), the
journal's checkpoints, the restore and the consumer lag of ``up``'s drain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition


async def true_ends(
    bootstrap: str, annoncees: Mapping[TopicPartition, int], timeout: float = 5.0,
    consumer: AIOKafkaConsumer | None = None,
) -> dict[TopicPartition, int]:
    """The true end offsets, given the ones ListOffsets announced: fetch from the last announced
    offset and take the end of the batch that comes back. ``consumer``: a started one to use
    (its assignment is replaced), rather than a new one."""
    fins = dict(annoncees)
    a_verifier = [tp for tp, fin in annoncees.items() if fin]
    if not a_verifier:
        return fins
    own = consumer is None
    if consumer is None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
    try:
        consumer.assign([TopicPartition(tp.topic, tp.partition) for tp in a_verifier])
        for tp in a_verifier:
            consumer.seek(TopicPartition(tp.topic, tp.partition), annoncees[tp] - 1)
        restants = set(a_verifier)
        deadline = asyncio.get_running_loop().time() + timeout
        while restants and asyncio.get_running_loop().time() < deadline:
            for ktp, records in (await consumer.getmany(timeout_ms=500)).items():
                for tp in [t for t in restants if (t.topic, t.partition) == (ktp.topic, ktp.partition)]:
                    fins[tp] = max(fins[tp], records[-1].offset + 1, consumer.highwater(ktp) or 0)
                    restants.discard(tp)
    finally:
        if own:
            await consumer.stop()
        else:
            consumer.assign([])  # a borrowed consumer: it fetches nothing more in the background
    return fins
