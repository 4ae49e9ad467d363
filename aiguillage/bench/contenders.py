"""The contenders, each run as its own process: ``python -m aiguillage.bench.contenders KIND ...``.

- ``limit``: a plain aiokafka loop, decode + re-encode the Avro, produce; nothing else.
- ``peer``: a plain Faust agent doing the same copy with Faust's default settings,
  as a team that used Faust without care would write it.
- ``floor``: the peer's copy with the hub's own Faust settings, batches (``stream.take``),
  fast paths (``streams.batches``, ``streams.faust_patches``) and event loop: what Faust itself costs the hub
  before it does any work of its own, so the best a Faust hub can reach on this broker.
- ``hub``: the real routing worker (``streams.worker.build``) on topics renamed
  under a per-run prefix, so a bench never touches a real hub's topics.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiguillage import topics
from aiguillage.codec import AvroCodec, CodecError

# The limit's own tuning: short fetch waits (the embedded broker answers a fetch only at
# fetch_max_wait), a small linger so that batches form under load without holding records.
LIMIT_FETCH_WAIT_MS = 20
LIMIT_LINGER_MS = 5


def renamed(prefix: str, name: str) -> str:
    return f"{prefix}.{name}"


def entree(prefix: str) -> str:
    """The ingress topic every contender reads (the hub reads its five, all fed through this one)."""
    return renamed(prefix, topics.entrants("service-medical"))


def sortie(prefix: str) -> str:
    return renamed(prefix, topics.AFFECTATIONS)


def hub_topic_names(prefix: str) -> list[str]:
    return [renamed(prefix, t.name) for t in topics.hub_topics()]


def recoder(codec: AvroCodec, value: bytes | None) -> bytes | None:
    """The limit's and the floor's copy: decode and re-encode; None for a bad record (skipped)."""
    try:
        return codec.encode("Signalement", codec.decode("Signalement", value))
    except CodecError:
        return None


async def _limit(bootstrap: str, prefix: str, group: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    codec = AvroCodec()
    consumer = AIOKafkaConsumer(
        entree(prefix),
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=LIMIT_FETCH_WAIT_MS,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=LIMIT_LINGER_MS, max_batch_size=256 * 1024
    )
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    out = sortie(prefix)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=2000)
            acks = []
            for records in batch.values():
                for r in records:
                    if (value := recoder(codec, r.value)) is not None:
                        acks.append(await producer.send(out, value, key=r.key))
            if acks:
                await asyncio.gather(*acks)  # at least once: commit only what the broker acknowledged
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


def limit(bootstrap: str, prefix: str, group: str) -> None:
    asyncio.run(_limit(bootstrap, prefix, group))


def peer(bootstrap: str, prefix: str, group: str) -> None:
    import faust

    # Defaults everywhere (the worker's too: log level WARN, whose progress spinner turns
    # the root logger to DEBUG); only the web server is off (a port, not a setting of speed).
    app = faust.App(group, broker=f"kafka://{bootstrap}", web_enabled=False)
    codec = AvroCodec()
    source = app.topic(entree(prefix), key_serializer="raw", value_serializer="raw")
    dest = app.topic(sortie(prefix), key_serializer="raw", value_serializer="raw")

    @app.agent(source)
    async def copie(stream):
        async for event in stream.events():
            value = codec.encode("Signalement", codec.decode("Signalement", event.value))
            await dest.send(key=event.key, value=value)

    faust.Worker(app, loglevel="WARN", quiet=True).execute_from_commandline()  # `faust worker` default


def floor(bootstrap: str, prefix: str, group: str) -> None:
    import faust

    from aiguillage.broker_profile import profile
    from aiguillage.config import Settings
    from streams import batches, event_loop, faust_patches, gc_tuning
    from streams.topology import make_app

    settings = Settings(broker=f"kafka://{bootstrap}", worker_id=group)
    faust_patches.install(profile(settings))
    app = make_app(settings)
    codec = AvroCodec()
    source, dest = app.topic(entree(prefix)), app.topic(sortie(prefix))

    @app.agent(source, concurrency=1)
    async def copie(stream):
        async for events in batches.par_lots(stream):
            acks = []
            for event in events:
                if (value := recoder(codec, event.message.value)) is not None:
                    acks.append(await dest.send(key=event.message.key, value=value))
            await batches.acquittements(acks)  # the batch is acked (committed) once its outputs are

    gc_tuning.regler()
    event_loop.choisir(settings.event_loop)
    faust.Worker(app, loglevel="WARN", quiet=True).execute_from_commandline()


def hub(bootstrap: str, prefix: str, group: str) -> None:
    from aiguillage.config import Settings

    # Rename every hub topic under the run's prefix before the topology reads the names.
    entrants, retours = topics.entrants, topics.retours
    for name in ("REJETES", "AFFECTATIONS", "SUIVIS", "AGREGATS"):
        setattr(topics, name, renamed(prefix, getattr(topics, name)))
    topics.entrants = lambda s: renamed(prefix, entrants(s))  # type: ignore[assignment]
    topics.retours = lambda s: renamed(prefix, retours(s))  # type: ignore[assignment]

    from streams.worker import run

    run(Settings(broker=f"kafka://{bootstrap}", worker_id=group))  # exactly what `aiguillage worker` runs


KINDS = {"limit": limit, "peer": peer, "floor": floor, "hub": hub}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args()
    KINDS[args.kind](args.bootstrap, args.prefix, args.group)


if __name__ == "__main__":
    main()
