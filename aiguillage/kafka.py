"""Kafka plumbing shared by the gateway, the CLI and the sinks: a producer that waits for acks."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from aiguillage.codec import AvroCodec
from aiguillage.security import kafka_client_kwargs


def partition_de(cle: bytes, n: int) -> int:
    """The partition Kafka's default partitioner gives ``cle`` among ``n`` (murmur2, as aiokafka
    and the Java client do): where a record with that key goes, and so its table entry."""
    return (murmur2(cle) & 0x7FFFFFFF) % n


class BrokerIndisponible(RuntimeError):
    """The broker did not acknowledge a write in time: the caller must not say it was accepted."""


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    # acks=all and no idempotence: the embedded broker has no InitProducerId, and
    # every effect downstream is idempotent (deterministic ids, upserts, dedup).
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": False,
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

    def __init__(self, bootstrap: str, codec: AvroCodec | None = None, timeout: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.codec = codec or AvroCodec()
        self.timeout = timeout
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

    async def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        try:
            producer = await self._ensure()
            fut = await producer.send(topic, value=value, key=key)
            await asyncio.wait_for(fut, self.timeout)
        except (TimeoutError, KafkaError, OSError) as exc:
            await self._reset()
            raise BrokerIndisponible(f"the broker did not acknowledge the write to {topic}: {type(exc).__name__}") from exc

    async def send(self, topic: str, schema: str, record: dict[str, Any], key: bytes | None = None) -> None:
        await self.send_raw(topic, self.codec.encode(schema, record), key)

    async def _reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await _quietly_stop(producer)

    async def close(self) -> None:
        await self._reset()


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):  # stopping a broken producer may fail; nothing to keep
        await asyncio.wait_for(producer.stop(), 5)
