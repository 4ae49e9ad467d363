"""Workaround for a quirk of the embedded broker (Tansu), installed only when the worker runs on it.

Tansu answers ListOffsets(latest) with the base offset of the last record batch + 1, not the
true end offset. Faust reads a changelog up to that end when it recovers a table, so the other
records of the last batch would be missing from the table after a restart (measured: with
multi-record changelog batches, re-sent signalements were routed again). A fetch is right:
it returns that last batch whole, and its records give the true end.

On Apache Kafka both answers agree; production never installs this (``AIGUILLAGE_EMBEDDED_BROKER``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger(__name__)


async def vraies_fins(
    bootstrap: str, annoncees: Mapping[TopicPartition, int], timeout: float = 5.0
) -> dict[TopicPartition, int]:
    """The true end offsets, given the ones ListOffsets announced: fetch from the last announced
    offset and take the end of the batch that comes back."""
    fins = dict(annoncees)
    a_verifier = [tp for tp, fin in annoncees.items() if fin]
    if not a_verifier:
        return fins
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
        await consumer.stop()
    return fins


def installer(bootstrap: str) -> None:
    """Make Faust's recovery read changelogs to their true end on the embedded broker."""
    original = faust_aiokafka.AIOKafkaConsumerThread._highwaters

    async def _highwaters(self: faust_aiokafka.AIOKafkaConsumerThread, partitions: Iterable) -> Mapping:
        annoncees = await original(self, list(partitions))
        if self.consumer.in_transaction:
            return annoncees
        fins = await vraies_fins(bootstrap, annoncees)
        corrigees = {tp: (annoncees[tp], fins[tp]) for tp in fins if fins[tp] != annoncees[tp]}
        if corrigees:
            log.info("embedded broker: end offsets corrected (announced, true): %s", corrigees)
        return fins

    faust_aiokafka.AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]
