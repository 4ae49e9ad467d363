"""Consumer lag: per group, topic and partition, how many records are past what the group committed.

Read with the admin client (ListGroups, OffsetFetch with explicit partitions: what both brokers
answer) and the partitions' end offsets; on the embedded broker the ends are checked by a fetch,
its ListOffsets answering short (``aiguillage/embedded/ends.py``). ``aiguillage up`` drains with it.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from aiguillage.embedded.ends import true_ends

Lag = dict[tuple[str, str, int], int]


async def consumer_lag(bootstrap: str, embedded: bool, groups: list[str] | None = None, **client: Any) -> Lag:
    """Lag of ``groups`` (every group the broker lists, if None) on each partition they committed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="aiguillage-lag", **client)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="aiguillage-lag", **client)
    await admin.start()
    await probe.start()
    try:
        if groups is None:
            groups = [g for g, _ in await admin.list_consumer_groups()]
        described = await admin.describe_topics(await admin.list_topics())
        tps = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
               if not t["topic"].startswith("__")]
        if not tps or not groups:
            return {}
        ends = await probe.end_offsets(tps)
        if embedded:
            ends = await true_ends(bootstrap, ends)
        starts = await probe.beginning_offsets(tps)
        lag: Lag = {}
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
            # A partition of a topic the group reads but has not committed on yet: all of it is lag
            # (the hub's groups start from the earliest offset).
            read = {tp.topic for tp, meta in committed.items() if meta.offset >= 0}
            for tp, meta in committed.items():
                if tp.topic in read:
                    done = meta.offset if meta.offset >= 0 else starts.get(tp, 0)
                    lag[(group, tp.topic, tp.partition)] = max(0, ends.get(tp, 0) - done)
        return lag
    finally:
        await probe.stop()
        await admin.close()


async def hub_groups(bootstrap: str, worker_id: str, **client: Any) -> list[str]:
    """The hub's groups the broker knows: the worker's (``<worker_id>``) and the sinks'
    (``<worker_id>-sink-…``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="aiguillage-lag", **client)
    await admin.start()
    try:
        return [g for g, _ in await admin.list_consumer_groups()
                if g == worker_id or g.startswith(f"{worker_id}-sink-")]
    finally:
        await admin.close()


async def hub_lag(bootstrap: str, worker_id: str, embedded: bool, **client: Any) -> int:
    """What the hub's worker and sinks have left, in all."""
    groups = await hub_groups(bootstrap, worker_id, **client)
    return sum((await consumer_lag(bootstrap, embedded, groups, **client)).values()) if groups else 0


async def publier(bootstrap: str, embedded: bool, worker_id: str, **client: Any) -> None:
    """Set ``aiguillage_consumer_lag`` for every group of the hub. Measured from outside the
    consumers (by the gateway), as a lag exporter does: a consumer that is stuck cannot say so."""
    from aiguillage import metrics

    groups = await hub_groups(bootstrap, worker_id, **client)
    for (group, topic, partition), n in (await consumer_lag(bootstrap, embedded, groups, **client)).items():
        metrics.LAG.labels(group, topic, str(partition)).set(n)
