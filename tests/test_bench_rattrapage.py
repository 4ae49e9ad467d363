"""The bench's readings of the hub's topics, on each broker: what its group has yet to commit
(the restart waits for none), and the records written per topic (the drain's volumes)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from aiguillage.bench import rattrapage


@pytest.mark.parametrize("kind", [pytest.param("embedded", marks=pytest.mark.embedded),
                                  pytest.param("kafka", marks=pytest.mark.kafka)])
def test_the_bench_reads_what_the_group_has_left_and_what_each_topic_received(kind, request):
    bootstrap = request.getfixturevalue(kind).bootstrap
    prefixe = f"rattrapage-{uuid.uuid4().hex[:8]}-hub"
    entree, interne, changelog = f"{prefixe}.entree", f"{prefixe}.affectations", f"{prefixe}-app-dossiers-changelog"
    groupe = f"{prefixe}-app"

    async def scenario() -> None:
        avant = await rattrapage.fins_par_topic(bootstrap, prefixe, kind == "embedded")
        assert avant == {}  # no topic of that prefix yet
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(t, 2, 1) for t in (entree, interne, changelog)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for topic, n in ((entree, 4), (interne, 6), (changelog, 10)):
                for i in range(n):
                    await producer.send_and_wait(topic, b"v", partition=i % 2)
        finally:
            await producer.stop()
        apres = await rattrapage.fins_par_topic(bootstrap, prefixe, kind == "embedded")
        assert apres == {entree: 4, interne: 6, changelog: 10}
        # Per signalement of a drain of 2: the input aside, most first, named as the bench prints them.
        assert rattrapage.par_signalement(avant, apres, 2, entree, prefixe) == {"dossiers-changelog": 5.0, "affectations": 3.0}

        membre = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=groupe, enable_auto_commit=False)
        await membre.start()
        try:
            tps = {t: [TopicPartition(t, p) for p in (0, 1)] for t in (entree, interne)}
            membre.assign([*tps[entree], *tps[interne]])  # commits as the group, without joining it
            # Everything of the input read, 2 of the 3 records of each internal partition: 2 left
            # (the changelog, which a running worker only writes, is not waited for).
            await membre.commit({tp: OffsetAndMetadata(2, "") for tp in tps[entree]}
                                | {tp: OffsetAndMetadata(2, "") for tp in tps[interne]})
            lues = await rattrapage.partitions_du_hub(bootstrap, prefixe, changelogs=False)
            assert lues == sorted([*tps[entree], *tps[interne]])
            lecteur = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=groupe, enable_auto_commit=False)
            await lecteur.start()
            try:
                assert await rattrapage.retard(lecteur, bootstrap, lues, kind == "embedded") == 2
            finally:
                await lecteur.stop()
            attente = asyncio.ensure_future(rattrapage.attendre(bootstrap, groupe, prefixe, kind == "embedded",
                                                                alive=lambda: None, timeout=60, pause=0.2))
            await asyncio.sleep(1.0)
            assert not attente.done()  # still 2 behind
            await membre.commit({tp: OffsetAndMetadata(3, "") for tp in tps[interne]})
            assert await asyncio.wait_for(attente, 30) < 60  # caught up, not timed out
        finally:
            await membre.stop()

    asyncio.run(scenario())
