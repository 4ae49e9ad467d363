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

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from aiguillage.embedded.ends import true_ends

log = logging.getLogger(__name__)


async def partitions_du_hub(bootstrap: str, prefixe: str, changelogs: bool) -> list[TopicPartition]:
    """The partitions of the hub's topics (all exist once it drained), its tables' changelogs
    included or not. Read with the admin client: a consumer without a subscription knows the
    names of all topics but the partitions of none (aiokafka's ``partitions_for_topic``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        noms = [t for t in await admin.list_topics()
                if t.startswith(prefixe) and (changelogs or not t.endswith("-changelog"))]
        decrits = await admin.describe_topics(noms) if noms else []
    finally:
        await admin.close()
    return sorted(TopicPartition(t["topic"], p["partition"]) for t in decrits for p in t["partitions"])


async def fins_par_topic(bootstrap: str, prefixe: str, embarque: bool) -> dict[str, int]:
    """The end offsets of all the hub's topics, its changelogs included, summed per topic: two
    readings around the drain give the records it wrote per signalement, topic by topic."""
    tps = await partitions_du_hub(bootstrap, prefixe, changelogs=True)
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        fins = await consumer.end_offsets(tps)
        if embarque:
            fins = await true_ends(bootstrap, fins, consumer=consumer)
    finally:
        await consumer.stop()
    totaux: dict[str, int] = {}
    for tp, fin in fins.items():
        totaux[tp.topic] = totaux.get(tp.topic, 0) + fin
    return totaux


def par_signalement(avant: dict[str, int], apres: dict[str, int], n: int, entree: str, prefixe: str) -> dict[str, float]:
    """Records written per signalement of the drain, by topic (the input aside), most first, each
    named without the run's prefix (``affectations``, ``cycles-changelog``); an internal topic named
    like a public one keeps its app's mark (``app-affectations``, the life cycle's packets)."""
    publics = {t.removeprefix(prefixe).lstrip(".") for t in apres if t.removeprefix(prefixe).startswith(".")}

    def nom(t: str) -> str:
        court = t.removeprefix(prefixe).removeprefix("-app-").lstrip(".-")
        return f"app-{court}" if t.removeprefix(prefixe).startswith("-app-") and court in publics else court

    deltas = {nom(t): (fin - avant.get(t, 0)) / max(1, n) for t, fin in apres.items() if t != entree}
    return dict(sorted(((t, round(v, 3)) for t, v in deltas.items() if v > 0), key=lambda kv: -kv[1]))


async def retard(consumer: AIOKafkaConsumer, bootstrap: str, tps: list[TopicPartition], embarque: bool) -> int:
    """Records the group has not committed yet, over the partitions it has committed on.

    ``consumer`` is in the hub's group without joining it (no subscription): it reads the group's
    committed offsets (the embedded broker cannot answer the admin client's OffsetFetch)."""
    commits = {tp: off for tp in tps if (off := await consumer.committed(tp)) is not None}
    if not commits:
        return 0
    fins = await consumer.end_offsets(list(commits))
    if embarque:  # the embedded broker's ListOffsets can announce less than the end
        fins = await true_ends(bootstrap, fins, consumer=consumer)
    return sum(max(0, fins[tp] - offset) for tp, offset in commits.items())


async def attendre(bootstrap: str, groupe: str, prefixe: str, embarque: bool, alive: Callable[[], None],
                   timeout: float = 600.0, pause: float = 1.0) -> float:
    """Seconds until the group is caught up (or the timeout, with a warning)."""
    debut = time.monotonic()
    tps = await partitions_du_hub(bootstrap, prefixe, changelogs=False)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=groupe, enable_auto_commit=False)
    await consumer.start()
    try:
        while True:
            alive()
            n = await retard(consumer, bootstrap, tps, embarque)
            if n == 0 or time.monotonic() - debut > timeout:
                if n:
                    log.warning("group %s still %d records behind after %.0f s: restarting anyway", groupe, n, timeout)
                return time.monotonic() - debut
            await asyncio.sleep(pause)
    finally:
        await consumer.stop()
