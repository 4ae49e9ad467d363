"""Put a fresh embedded broker back where the last checkpoint left the previous one.

Each partition gets its journaled records up to the cut, in offset order, so that they land at
the same offsets (the broker numbers a fresh partition from 0, one by one); then each consumer
group gets its committed offsets back. What the journal holds past the cut is forgotten: those
offsets belong to the new broker now. Last, what the gateway's outbox accepted since the cut is
sent again; the worker routes what it has not seen, and drops the rest as resends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from aiguillage.embedded.ends import true_ends
from aiguillage.embedded.journal import Checkpoint, Journal
from aiguillage.embedded.outbox import Outbox

log = logging.getLogger(__name__)


class RestoreError(RuntimeError):
    """The journal cannot be put back as it was (a gap in a partition, offsets that moved)."""


@dataclass(frozen=True)
class Restored:
    records: int
    groups: int
    resent: int
    seconds: float


async def restore(journal: Journal, outbox: Outbox | None, bootstrap: str,
                  progress: Callable[[str], None] = lambda _: None) -> Restored | None:
    """Restore the last checkpoint into the (fresh) broker at ``bootstrap``; None without one
    (a first start; or a broker that died before its first checkpoint: then what the journal
    holds is forgotten, and the whole outbox is sent again)."""
    started = time.monotonic()
    checkpoint = journal.last()
    if checkpoint is None:
        journal.cut({})
        if outbox is not None and outbox.last():
            await _resend(outbox, 0, bootstrap)
        return None
    dropped = journal.cut(checkpoint.ends)
    if dropped:
        log.info("journal: %d record(s) past the last checkpoint forgotten", dropped)
    await _create_topics(bootstrap, journal.topics())
    records = await _replay(journal, checkpoint, bootstrap, progress)
    await _commit_groups(bootstrap, checkpoint)
    resent = await _resend(outbox, checkpoint.outbox, bootstrap) if outbox is not None else 0
    return Restored(records, len(checkpoint.groups), resent, time.monotonic() - started)


async def _create_topics(bootstrap: str, partitions: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="aiguillage-restore")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, n, 1) for t, n in sorted(partitions.items()) if t not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def _replay(journal: Journal, checkpoint: Checkpoint, bootstrap: str, progress: Callable[[str], None]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=20,
                                max_batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024,
                                client_id="aiguillage-restore")
    await producer.start()
    total = 0
    try:
        for (topic, partition), end in sorted(checkpoint.ends.items()):
            if not end:
                continue
            acks = []
            expected = 0
            for offset, timestamp, key, value, headers in journal.records(topic, partition, end):
                if offset != expected:
                    raise RestoreError(f"{topic}[{partition}]: the journal lacks offset {expected} (next is {offset})")
                acks.append(await producer.send(topic, value=value, key=key, partition=partition,
                                                timestamp_ms=timestamp, headers=_headers(headers)))
                expected += 1
            if expected != end:
                raise RestoreError(f"{topic}[{partition}]: the journal holds {expected} records, the cut {end}")
            # One partition at a time, acked before the next: the broker numbers them in order.
            await asyncio.gather(*acks)
            total += expected
            progress(f"restored {topic}[{partition}]: {expected} records")
    finally:
        await producer.stop()
    await _check_offsets(bootstrap, checkpoint)
    return total


def _headers(raw: str | None) -> list[tuple[str, bytes]] | None:
    return [(k, bytes.fromhex(v)) for k, v in json.loads(raw)] if raw else None


async def _check_offsets(bootstrap: str, checkpoint: Checkpoint) -> None:
    tps = [TopicPartition(t, p) for (t, p), end in checkpoint.ends.items() if end]
    if not tps:
        return
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await probe.start()
    try:
        ends = await true_ends(bootstrap, await probe.end_offsets(tps))
    finally:
        await probe.stop()
    moved = {f"{tp.topic}[{tp.partition}]": (end, checkpoint.ends[(tp.topic, tp.partition)])
             for tp, end in ends.items() if end != checkpoint.ends[(tp.topic, tp.partition)]}
    if moved:
        raise RestoreError(f"restored partitions end elsewhere than the cut (got, expected): {moved}")


async def _commit_groups(bootstrap: str, checkpoint: Checkpoint) -> None:
    for group, offsets in checkpoint.groups.items():
        if not offsets:
            continue
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = {TopicPartition(t, p): o for (t, p), o in offsets.items()}
            consumer.assign(list(tps))
            await consumer.commit(tps)
        finally:
            await consumer.stop()


async def _resend(outbox: Outbox, after: int, bootstrap: str) -> int:
    entries = list(outbox.after(after))
    if not entries:
        return 0
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5,
                                client_id="aiguillage-restore")
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(e.topic, value=e.value, key=e.key) for e in entries])
    finally:
        await producer.stop()
    return len(entries)
