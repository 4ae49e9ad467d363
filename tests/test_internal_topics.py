"""The worker makes its internal topics before it joins its group (streams/internal_topics.py)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from aiguillage.config import read_settings
from streams import internal_topics
from streams.worker import build


@pytest.mark.parametrize("nom", [pytest.param("embedded", marks=pytest.mark.embedded),
                                 pytest.param("kafka", marks=pytest.mark.kafka)])
def test_every_repartition_and_changelog_topic_is_made_with_faust_s_settings(nom, request, monkeypatch):
    broker = request.getfixturevalue(nom)
    p = f"aiguillage-internes-{nom}"
    monkeypatch.setenv("AIGUILLAGE_BROKER", broker.url)
    monkeypatch.setenv("AIGUILLAGE_DLQ_KEY", "00" * 32)
    monkeypatch.setenv("AIGUILLAGE_WORKER_ID", p)
    app = build(read_settings())
    prevus = {t.name: t for t in internal_topics.a_creer(app)}
    assert {f"{p}-equipes", f"{p}-signalements", f"{p}-agregats-partiels", f"{p}-cycles-changelog"} <= prevus.keys()
    assert all(n.startswith(f"{p}-") for n in prevus)  # the public topics are not its business
    assert prevus[f"{p}-cycles-changelog"].topic_configs == {"cleanup.policy": "compact"}

    internal_topics.creer(app, {"bootstrap_servers": broker.bootstrap})  # made, and seen in the metadata
    internal_topics.creer(app, {"bootstrap_servers": broker.bootstrap})  # again: nothing to do, no error

    async def decrits() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(list(prevus))}
        finally:
            await admin.close()

    assert asyncio.run(decrits()) == {n: t.num_partitions for n, t in prevus.items()}
