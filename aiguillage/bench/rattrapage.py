"""Before the hub's restart: wait until its group has caught up on every topic it reads.

The drain ends at the last Affectation, while the life cycle and the figures may still be behind
on theirs. A worker restarted on such a backlog spends its first seconds catching up, and its
agents share one consumer, so a new signalement waits behind that backlog: the restart would
measure the backlog, not the restart. The bench stops the hub once its committed offsets reach
the end of every partition it reads (its tables' changelogs aside: a running worker only writes
them), and reports how long that took after the last output.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from aiguillage.embedded.ends import true_ends

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rattrapage:
    secondes: float  # from the call to the first reading of no lag (or to the timeout)
    retard: int  # records behind at the last reading: 0 once caught up


async def retard(consumer: AIOKafkaConsumer, bootstrap: str, prefixe: str, embarque: bool) -> int:
    """Records the group has not committed yet, over the partitions of its topics it has committed on.

    ``consumer`` is in the hub's group without joining it (no subscription): it reads the group's
    committed offsets (the embedded broker cannot answer the admin client's OffsetFetch)."""
    await consumer._client.force_metadata_update()  # topics the hub created since the last reading
    tps = [TopicPartition(t, p) for t in sorted(await consumer.topics())
           if t.startswith(prefixe) and not t.endswith("-changelog") for p in consumer.partitions_for_topic(t) or ()]
    commits = {tp: off for tp in tps if (off := await consumer.committed(tp)) is not None and off >= 0}
    if not commits:
        return 0
    fins = await consumer.end_offsets(list(commits))
    if embarque:  # the embedded broker's ListOffsets can announce less than the end
        fins = await true_ends(bootstrap, fins)
    return sum(max(0, fins[tp] - offset) for tp, offset in commits.items())


async def attendre(bootstrap: str, groupe: str, prefixe: str, embarque: bool, alive: Callable[[], None],
                   timeout: float = 600.0, pause: float = 1.0) -> Rattrapage:
    debut = time.monotonic()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=groupe, enable_auto_commit=False)
    await consumer.start()
    try:
        while True:
            alive()
            n = await retard(consumer, bootstrap, prefixe, embarque)
            if n == 0 or time.monotonic() - debut > timeout:
                if n:
                    log.warning("group %s still %d records behind after %.0f s: restarting anyway", groupe, n, timeout)
                return Rattrapage(time.monotonic() - debut, n)
            await asyncio.sleep(pause)
    finally:
        await consumer.stop()
