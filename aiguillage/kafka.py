"""Kafka plumbing shared by the gateway, the CLI and the sinks: a producer that waits for acks."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from murmurhash2 import murmurhash2

from aiguillage.broker_profile import profile
from aiguillage.codec import AvroCodec
from aiguillage.config import get_settings
from aiguillage.embedded.outbox import Outbox
from aiguillage.security import kafka_client_kwargs

MURMUR2_SEED = 0x9747B28C  # the Java client's (and aiokafka's) murmur2 seed


def partition_de(cle: bytes, n: int) -> int:
    """The partition Kafka's default partitioner gives ``cle`` among ``n`` (murmur2, as aiokafka
    and the Java client do): where a record with that key goes, and so its table entry. In C:
    aiokafka's pure-Python murmur2 took 11 µs a key, 2.4 % of the worker's CPU
    (`aiguillage bench --profile`); tests/test_partitions.py checks both agree."""
    return (murmurhash2(cle, MURMUR2_SEED) & 0x7FFFFFFF) % n


class Murmur2Partitioner:
    """aiokafka's DefaultPartitioner over :func:`partition_de`: every key gets the partition the
    default would give it. The workers' producers use it (Faust's ``producer_partitioner``)."""

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[partition_de(key, len(all_partitions))]


PUBLISH_TIMEOUT = 10.0  # seconds a write may wait for its ack before the caller hears "no"


class BrokerIndisponible(RuntimeError):
    """The broker did not acknowledge a write in time: the caller must not say it was accepted."""


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    # acks=all everywhere; idempotent on Kafka, not on the embedded broker (no InitProducerId),
    # where every effect downstream is idempotent anyway (deterministic ids, upserts, dedup).
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        **profile(get_settings()).producer_settings(),
        "linger_ms": 5,
        "request_timeout_ms": 10_000,
        "client_id": "aiguillage",
        **kafka_client_kwargs(),
    }
    config.update(overrides)
    return config


class Publieur:
    """Encodes domain records with the codec and sends them, returning only once acknowledged.

    The producer is started lazily and rebuilt after a failure, so a gateway that
    came up while the broker was away recovers by itself when it is back.
    """

    def __init__(self, bootstrap: str, codec: AvroCodec | None = None, timeout: float = PUBLISH_TIMEOUT,
                 outbox: Outbox | None = None) -> None:
        self.bootstrap = bootstrap
        self.codec = codec or AvroCodec()
        self.timeout = timeout
        self.outbox = outbox  # the embedded mode's: what is answered 202 is kept there first
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(**producer_config(self.bootstrap))
                try:
                    await asyncio.wait_for(producer.start(), self.timeout)
                except BaseException:
                    await _quietly_stop(producer)
                    raise
                self._producer = producer
            return self._producer

    async def send_raw(self, topic: str, value: bytes, key: bytes | None = None, durable: bool = False,
                       headers: list[tuple[str, bytes]] | None = None) -> None:
        """Send and wait for the broker's ack. ``durable``: a record the caller will acknowledge to
        a partner, kept in the outbox first when there is one (aiguillage/embedded/outbox.py)."""
        await self.send_many([(topic, value, key, headers)], durable)

    async def send_many(self, records: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]] | None]],
                        durable: bool = False) -> None:
        """Send ``(topic, value, key, headers)`` records together and wait for all their acks: a
        batch costs one wait for the broker, not one per record. ``durable`` as for :meth:`send_raw`
        (the outbox takes the whole batch in one transaction first). Any failure fails the batch."""
        if not records:
            return
        if durable and self.outbox is not None:
            try:
                await asyncio.to_thread(self.outbox.append_many, [(t, v, k) for t, v, k, _ in records])
            except sqlite3.Error as exc:
                raise BrokerIndisponible(f"the outbox refused {_ecritures(records)}: {exc}") from exc
        try:
            producer = await self._ensure()
            futs = [await producer.send(topic, value=value, key=key, headers=headers)
                    for topic, value, key, headers in records]
            await asyncio.wait_for(asyncio.gather(*futs), self.timeout)
        except (TimeoutError, KafkaError, OSError) as exc:
            await self._reset()
            raise BrokerIndisponible(
                f"the broker did not acknowledge {_ecritures(records)}: {type(exc).__name__}") from exc

    async def send(self, topic: str, schema: str, record: dict[str, Any], key: bytes | None = None,
                   durable: bool = False, headers: list[tuple[str, bytes]] | None = None) -> None:
        await self.send_raw(topic, self.codec.encode(schema, record), key, durable, headers)

    async def _reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await _quietly_stop(producer)

    async def close(self) -> None:
        await self._reset()


def _ecritures(records: list[Any]) -> str:
    """What a failed send names: the write to a topic, or how many writes to which topics."""
    noms = ", ".join(sorted({r[0] for r in records}))
    return f"the write to {noms}" if len(records) == 1 else f"{len(records)} writes to {noms}"


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):  # stopping a broken producer may fail; nothing to keep
        await asyncio.wait_for(producer.stop(), 5)
