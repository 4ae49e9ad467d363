"""The worker's internal topics (repartitions, changelogs), made before it joins its group.

Faust declares them itself while it starts, but concurrently with the consumer's
subscription: a fresh worker whose group is assigned before they exist gets none of their
partitions, and nothing brings them back until the next rebalance, so routing stalls (seen
under load, on both brokers). Made here first, with the settings Faust would give them (it
then finds them there), the first assignment includes them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


def _config(topic: Any) -> dict[str, str]:
    """Faust's own topic configuration (faust.transport.drivers.aiokafka, ``_topic_config``)."""
    config = {k: str(v) for k, v in (topic.config or {}).items()}
    policies = sorted(p for p, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on)
    if policies:
        config["cleanup.policy"] = ",".join(policies)
    if topic.retention:
        config["retention.ms"] = str(int(float(topic.retention) * 1000))
    return config


def a_creer(app: faust.App) -> list[NewTopic]:
    """Every internal topic of the app: its agents' internal channels and its tables' changelogs."""
    topics: list[Any] = [t.changelog_topic for t in app.tables.values()]
    topics += [a.channel for a in app.agents.values() if getattr(a.channel, "internal", False)]
    out: dict[str, NewTopic] = {}
    for t in topics:
        for name in t.topics:
            if not name.startswith(f"{app.conf.id}-"):
                continue  # a public topic read beside them (the life cycle's): `aiguillage topics create`'s
            out[name] = NewTopic(name, t.partitions or app.conf.topic_partitions,
                                 t.replicas or app.conf.topic_replication_factor or 1, topic_configs=_config(t))
    return list(out.values())


async def _creer(app: faust.App, client: dict[str, Any]) -> list[str]:
    admin = AIOKafkaAdminClient(**client)
    await admin.start()
    try:
        existants = set(await admin.list_topics())
        nouveaux = [t for t in a_creer(app) if t.name not in existants]
        for t in nouveaux:  # one by one: another replica may be creating the same ones
            try:
                await admin.create_topics([t])
            except TopicAlreadyExistsError:
                pass
        await _visibles(admin, [t.name for t in nouveaux])
        return [t.name for t in nouveaux]
    finally:
        await admin.close()


async def _visibles(admin: AIOKafkaAdminClient, noms: list[str], timeout: float = 30.0) -> None:
    """Until the metadata lists every partition of them: made is not yet seen by a consumer."""
    loop = asyncio.get_running_loop()
    fin = loop.time() + timeout
    while noms and loop.time() < fin:
        decrits = await admin.describe_topics(noms)
        noms = [t["topic"] for t in decrits if not t["partitions"] or t.get("error_code")]
        if noms:
            await asyncio.sleep(0.2)


def creer(app: faust.App, client: dict[str, Any]) -> None:
    faits = asyncio.run(_creer(app, client))
    if faits:
        log.info("internal topics made before joining the group: %s", ", ".join(sorted(faits)))
