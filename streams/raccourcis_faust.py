"""A fast path in faust-streaming's per-record code: fewer turns of the event loop (issue 8).

``Topic.publish_message`` awaits ``app.maybe_start_producer()`` for every record it sends
(table changelogs included). That coroutine is wrapped in mode's ``@stampede``, which yields
to the event loop three times per call (``asyncio.sleep(0)``): a cProfile of the hub
draining 11,000 signalements (Faust 0.15.3, mode 0.4) counted 370,000 of those sleeps and
135,000 epoll calls. Once the producer runs, the fast path hands it over at once; before
that (start-up) or inside a transaction (``exactly_once``, unused here), Faust's own path
runs. Measured with ``aiguillage bench`` (20,000 signalements): 291 -> 480 signalements/s,
hub CPU 3.3 -> 2.1 ms and broker CPU 1.3 -> 0.4 ms per signalement (fewer, fuller produce
requests).

``Topic.send`` of a record already in bytes goes through ``as_future_message`` (a
``PendingMessage`` and a ``FutureMessage``), the sensors and ``publish_message`` before it
reaches the producer: a py-spy profile of the hub (20,000 signalements) put 15 % of the
worker's samples in that wrapping, around 4 % in aiokafka's own ``send``. When nothing of
it applies (raw bytes, no headers, schema or callback, no publish-on-commit, a
started producer outside a transaction), the second fast path hands the record to the
producer directly; it returns the same future (aiokafka's), so callers await it as before.
Faust's sensors do not see these sends (this hub reads no Faust monitor).

(The same profile showed the consumer's per-record ``wait_first``, four tasks per record;
stepping the callback inline first made no difference to the bench, so Faust's is kept.)
"""

from __future__ import annotations

from typing import Any

from faust.serializers.schemas import Schema
from faust.topics import Topic

_installed = False
_send = Topic.send


async def _get_producer(self: Topic) -> Any:
    app = self.app
    producer = app.producer
    if producer.started and not app.in_transaction:
        return producer
    return await app.maybe_start_producer()


def _en_octets(serializer: Any, defaut: Any) -> bool:
    return (serializer or defaut) == "raw"


def en_direct(topic: Topic, key: Any, value: Any) -> bool:
    """Faust would hand this record to the producer unchanged: raw bytes to a topic whose
    declaration passes them through. (The producer's state is checked apart: it changes at run time.)"""
    return isinstance(value, bytes) and (key is None or isinstance(key, bytes)) and _declaration_directe(topic)


def _declaration_directe(topic: Topic) -> bool:
    """One topic, a plain schema, raw serializers, no publish-on-commit: fixed once the topic is
    declared, so read once per topic, not per record."""
    direct = topic.__dict__.get("_aiguillage_direct")
    if direct is None:
        app, sch = topic.app, topic.schema
        direct = (
            type(sch) is Schema and sch.key_type is None and sch.value_type is None
            and len(topic.topics) == 1
            and _en_octets(topic.key_serializer, app.conf.key_serializer)
            and _en_octets(topic.value_serializer, app.conf.value_serializer)
            and not app._attachments.enabled
        )
        topic.__dict__["_aiguillage_direct"] = direct
    return direct


async def _send_direct(self: Topic, *, key: Any = None, value: Any = None, partition: Any = None,
                       timestamp: Any = None, headers: Any = None, schema: Any = None, key_serializer: Any = None,
                       value_serializer: Any = None, callback: Any = None, force: bool = False) -> Any:
    app = self.app
    producer = app.producer
    if (
        (partition is None or type(partition) is int) and timestamp is None and headers is None and schema is None and callback is None
        and key_serializer is None and value_serializer is None
        and producer.started and not app.in_transaction and en_direct(self, key, value)
    ):
        return await producer.send(self.topics[0], key, value, partition=partition, timestamp=None, headers=None)
    return await _send(self, key=key, value=value, partition=partition, timestamp=timestamp, headers=headers,
                       schema=schema, key_serializer=key_serializer, value_serializer=value_serializer,
                       callback=callback, force=force)


def installer() -> None:
    global _installed
    if not _installed:
        Topic._get_producer = _get_producer  # type: ignore[method-assign]
        Topic.send = _send_direct  # type: ignore[method-assign]
        _installed = True
