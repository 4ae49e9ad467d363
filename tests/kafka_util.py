"""Test helpers that read topics raw, the way any Kafka tool would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def _read(bootstrap: str, names: list[str], idle: float) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = []
        for topic in names:
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            tps += [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning()
        out: list[ConsumerRecord] = []
        # Read until the topics are idle: ListOffsets is not trusted on the embedded broker.
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle * 1000), max_records=5000)
            if not batch:
                return out
            for records in batch.values():
                out.extend(records)
    finally:
        await consumer.stop()


def read_topic(bootstrap: str, topic: str, idle: float = 1.0) -> list[ConsumerRecord]:
    return asyncio.run(_read(bootstrap, [topic], idle))


def read_topics(bootstrap: str, names: list[str], idle: float = 2.0) -> list[ConsumerRecord]:
    """Every record of these topics, read by one consumer (one idle wait, not one per topic)."""
    return asyncio.run(_read(bootstrap, names, idle))


async def _all_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


def all_topics(bootstrap: str) -> list[str]:
    return asyncio.run(_all_topics(bootstrap))


def decode_local(codec: object, name: str, records: list[ConsumerRecord]) -> list[dict]:
    """Decode the records written with this repository's local schema ids.

    The session broker is shared: the schema-registry test writes the same topics with a
    registry's ids, which the local registry does not know and which are not this test's.
    """
    from aiguillage.codec import CodecError

    out = []
    for r in records:
        try:
            out.append(codec.decode(name, r.value))  # type: ignore[attr-defined]
        except CodecError as exc:
            if exc.code != "schema-inconnu":
                raise
    return out


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``check`` every 0.5 s until it returns something true; return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, f"{what}: not reached within {timeout:.0f} s"
            return result
        time.sleep(0.5)
