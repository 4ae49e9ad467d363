"""Everything the hub changes in faust-streaming's and aiokafka's internals, in one place, checked.

The worker calls :func:`install` before it builds its app. Each :class:`Patch` names its target
(an attribute of a Faust class), the parameters the target must still have, and why it exists;
:func:`check` compares them with what is installed (and the versions with those measured,
pinned in ``pyproject.toml``), and :func:`install` refuses to start on a mismatch with a message
naming each one: a patch applied to code that changed would silently do something else.
``tests/test_faust_patches.py`` tests each patch alone.

1. ``recovery-resume-after-seek`` (all brokers): ``Recovery.on_recovery_completed`` resumed the
   stream partitions *before* seeking to the committed offsets and resuming the flow: records
   already fetched ran, were committed, the seek rewound (duplicates), and the flow's resume
   cleared a queue still holding one (loss). Measured on a worker restarted with records waiting
   (tests/test_pannes.py, a 16-restart probe): the first record twice in about half the
   restarts, one lost in about one in eight; faust-streaming PR #217 fixed ``_resume_streams``
   only (issues #216, #596).
2. ``fetch-active-snapshot`` (all brokers): Faust hands aiokafka its *live* set of active
   partitions; when it is empty at fetch time, aiokafka reads "all partitions" and returns
   records Faust discards, its position past them (a stall). A snapshot taken when the fetch
   runs; none is fetched if it is empty. With 1 and 2: 0 duplicates, 0 losses over 19 restarts.
3. ``producer-fast-path`` and ``send-fast-path`` (all brokers): ``Topic.publish_message`` awaited
   ``maybe_start_producer()``, a ``@stampede`` coroutine yielding three times per record; and
   ``Topic.send`` of raw bytes went through two message objects, the sensors and
   ``publish_message`` (15 % of the worker's py-spy samples). Measured with ``aiguillage bench``:
   291 -> 480 and 553-605 -> 755-800 signalements/s. Faust's path runs whenever it would do more
   than hand the bytes over (a schema, headers, a callback, a transaction).
4. ``idempotent-producer`` (Kafka only, per app): Faust asks aiokafka for an idempotent producer
   inside a transaction only; on Kafka every producer of the hub is (broker_profile.py).
5. ``fetch-wait`` (embedded only, per app): Faust hard-codes a 1,500 ms fetch wait, which the
   embedded broker holds whole: 50 ms there (issue 8: 314 -> 390 signalements/s).
6. ``true-end-offsets`` (embedded only): Tansu's ListOffsets(latest) answers short; recovery
   would stop before the tail of a changelog (``aiguillage/embedded/ends.py``).
7. ``seek-rewinds-uncommitted`` (all brokers): after a rebalance Faust rewinds its stream
   partitions with aiokafka's ``seek_to_committed``, which does not move a partition with no
   committed offset (nor one committed at 0). Records fetched there before the rebalance and
   dropped with the old generation's queues were never read again, and the first commit, from
   the acks that followed, went past them: the first records of a partition lost. Seen as two
   MDPH signalements (offsets 0 and 1 of their partition) that never left the ingress topic in
   the scale-out test (CI of 2026-12-02); such a partition now goes back to its beginning
   (``consumer_auto_offset_reset`` is ``earliest``), as a committed one goes back to its offset.
8. ``changelog-batches`` (all brokers): ``Table.on_key_set`` and ``on_key_del`` sent each table
   write through Faust's producer buffer as a message of its own (~9 % of the hub's py-spy
   samples); they go to a builder per changelog partition instead (``streams/changelog.py``),
   and ``Producer.flush``, which Faust awaits before every commit, hands those over and waits
   for them, failing if the broker refused one. Faust's table sensors are not told of these
   writes (the hub reads none of Faust's monitor). Measured with ``aiguillage bench --only hub``
   against the commit before: +14 % on Kafka, +19 % on the embedded broker.
9. ``recovery-in-bulk`` (all brokers): ``Recovery._slurp_changelogs`` took the changelog records
   from its queue one at a time, each through ``asyncio.wait_for``, and asked after each whether
   recovery was over; it takes what waits in the queue together and asks once per lot instead
   (``streams/recovery.py``), so a restart with the tables in memory reads its changelogs faster.
10. ``drain-steps-first`` (all brokers): the consumer's loop hands each record to the streams
   through ``wait_first(deliver, suspend_flow.wait())``, which makes four tasks or futures and an
   ``asyncio.wait`` per record, so that a rebalance can interrupt a delivery blocked on a full
   stream buffer. The delivery is first stepped here, in the loop's own task: when it completes
   without waiting (a buffer with room, nearly always) nothing else is made; when it waits, the
   rest of it runs under ``wait_first`` as before (:class:`_Reprise`), interruptible the same way.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from faust.serializers.schemas import Schema
from faust.tables.recovery import Recovery
from faust.tables.table import Table
from faust.topics import Topic
from faust.transport.consumer import Consumer
from faust.transport.drivers import aiokafka as driver
from mode.services import ServiceTask, WaitResults

from aiguillage.broker_profile import BrokerProfile
from aiguillage.embedded.ends import true_ends
from streams import recovery
from streams.changelog import Journal

log = logging.getLogger(__name__)
TESTED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}  # the versions these patches were measured on


class FaustPatchError(RuntimeError):
    """What a patch targets is not what it was written for: the worker must not start."""


@dataclass(frozen=True)
class Patch:
    name: str
    owner: type
    attribute: str
    parameters: tuple[str, ...]  # the target's, as it was when the patch was written
    replacement: Callable[[Callable[..., Any]], Callable[..., Any]]  # original -> patched
    when: Callable[[BrokerProfile], bool] = lambda _: True


# -- 1, 2: recovery --------------------------------------------------------------------------

def _resume_after_seek(original: Callable[..., Any]) -> Callable[..., Any]:
    async def on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        deferred: list[Any] = []
        consumer.resume_partitions = deferred.append  # type: ignore[method-assign,assignment]
        try:
            await original(self, generation_id)
        finally:
            del consumer.resume_partitions  # the class method again
            if self.app.consumer_generation_id == generation_id:
                for tps in deferred:
                    consumer.resume_partitions(tps)
    return on_recovery_completed


def _fetch_snapshot(original: Callable[..., Any]) -> Callable[..., Any]:
    async def _fetch_records(self: Any, consumer: Any, active_partitions: Any, timeout: Any = None,
                             max_records: Any = None) -> Any:
        if active_partitions is None:  # a client-only app: every partition, as Faust meant
            return await original(self, consumer, None, timeout=timeout, max_records=max_records)
        snapshot = frozenset(active_partitions)
        if not snapshot:  # nothing active now: an empty set would make aiokafka drain every partition
            await asyncio.sleep(min(timeout or 0.0, 0.05))  # no busy loop while everything is paused
            return {}
        return await original(self, consumer, snapshot, timeout=timeout, max_records=max_records)
    return _fetch_records


# -- 3: fast paths -----------------------------------------------------------------------------

def _producer_fast_path(original: Callable[..., Any]) -> Callable[..., Any]:
    async def _get_producer(self: Topic) -> Any:
        producer = self.app.producer
        if producer.started and not self.app.in_transaction:
            return producer
        return await original(self)
    return _get_producer


def en_direct(topic: Topic, key: Any, value: Any) -> bool:
    """Faust would hand this record to the producer unchanged: raw bytes to a topic whose
    declaration passes them through (the producer's state is checked apart: it changes at run time)."""
    return isinstance(value, bytes) and (key is None or isinstance(key, bytes)) and _declaration_directe(topic)


def _declaration_directe(topic: Topic) -> bool:
    """One topic, a plain schema, raw serializers, no publish-on-commit: fixed once declared."""
    direct = topic.__dict__.get("_aiguillage_direct")
    if direct is None:
        app, sch = topic.app, topic.schema
        raw = lambda s, d: (s or d) == "raw"
        direct = (type(sch) is Schema and sch.key_type is None and sch.value_type is None and len(topic.topics) == 1
                  and raw(topic.key_serializer, app.conf.key_serializer)
                  and raw(topic.value_serializer, app.conf.value_serializer)
                  and not app._attachments.enabled)  # type: ignore[attr-defined]
        topic.__dict__["_aiguillage_direct"] = direct
    return bool(direct)


def _send_fast_path(original: Callable[..., Any]) -> Callable[..., Any]:
    async def send(self: Topic, *, key: Any = None, value: Any = None, partition: Any = None, timestamp: Any = None,
                   headers: Any = None, schema: Any = None, key_serializer: Any = None, value_serializer: Any = None,
                   callback: Any = None, force: bool = False) -> Any:
        producer = self.app.producer
        if ((partition is None or type(partition) is int) and timestamp is None and headers is None and schema is None
                and callback is None and key_serializer is None and value_serializer is None
                and producer.started and not self.app.in_transaction and en_direct(self, key, value)):
            return await producer.send(self.topics[0], key, value, partition=partition, timestamp=None, headers=None)
        return await original(self, key=key, value=value, partition=partition, timestamp=timestamp, headers=headers,
                              schema=schema, key_serializer=key_serializer, value_serializer=value_serializer,
                              callback=callback, force=force)
    return send


# -- 4, 5: client settings by broker, read per app (make_app sets app.broker_profile) ---------

def _idempotent_producer(original: Callable[..., Any]) -> Callable[..., Any]:
    def _settings_extra(self: Any) -> Mapping[str, Any]:
        extra = dict(original(self))
        broker = getattr(self.app, "broker_profile", None)
        if broker is not None and broker.idempotent_producers:
            extra.update(broker.producer_settings())
        return extra
    return _settings_extra


def _fetch_wait(original: Callable[..., Any]) -> Callable[..., Any]:
    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        broker = getattr(self.app, "broker_profile", None)
        if broker is not None and broker.fetch_max_wait_ms is not None:
            consumer._fetch_max_wait_ms = broker.fetch_max_wait_ms  # read by the Fetcher it starts
        return consumer
    return _create_worker_consumer


# -- 6: the embedded broker's end offsets ------------------------------------------------------

def _true_end_offsets(original: Callable[..., Any]) -> Callable[..., Any]:
    async def _highwaters(self: Any, partitions: Iterable[Any]) -> Mapping[Any, int]:
        announced = await original(self, list(partitions))
        if self.consumer.in_transaction:
            return announced
        bootstrap = ",".join(driver.server_list(self.transport.url, self.transport.default_port))
        ends = await true_ends(bootstrap, announced)
        corrected = {tp: (announced[tp], ends[tp]) for tp in ends if ends[tp] != announced[tp]}
        if corrected:
            log.info("embedded broker: end offsets corrected (announced, true): %s", corrected)
        return ends
    return _highwaters


# -- 7: stream partitions with nothing committed -----------------------------------------------

def _rewind_uncommitted(original: Callable[..., Any]) -> Callable[..., Any]:
    async def seek_to_committed(self: Any) -> Mapping[Any, int]:
        committed = await original(self)
        app = self.app
        if app.conf.consumer_auto_offset_reset == "earliest":
            # None or 0: aiokafka left the position where the last fetch put it
            unmoved = [tp for tp, offset in committed.items() if not offset and app.topics.acks_enabled_for(tp.topic)]
            if unmoved:
                await self.seek_to_beginning(*unmoved)
        return committed
    return seek_to_committed


# -- 8: the tables' changelog records, a builder per partition ---------------------------------

def _direct(table: Table) -> Journal | None:
    """The journal for this table's writes, or None where Faust's path must run (the table's
    declaration is read once; the producer's state at each write: it changes at run time)."""
    batchable = table.__dict__.get("_aiguillage_batchable")
    if batchable is None:
        batchable = table.__dict__["_aiguillage_batchable"] = not (table.use_partitioner or table._should_expire_keys())
    return Journal.de(table.app) if batchable else None


def _changelog_set(original: Callable[..., Any]) -> Callable[..., Any]:
    def on_key_set(self: Table, key: Any, value: Any) -> None:
        journal = _direct(self)
        if journal is None:
            return original(self, key, value)
        journal.ajouter(self, key, value, self.partition_for_key(key))  # type: ignore[arg-type]
    return on_key_set


def _changelog_del(original: Callable[..., Any]) -> Callable[..., Any]:
    def on_key_del(self: Table, key: Any) -> None:
        journal = _direct(self)
        if journal is None:
            return original(self, key)
        journal.ajouter(self, key, None, self.partition_for_key(key), tombstone=True)  # type: ignore[arg-type]
    return on_key_del


def _flush_changelog(original: Callable[..., Any]) -> Callable[..., Any]:
    async def flush(self: Any) -> None:
        journal = self.app.__dict__.get("_aiguillage_journal")
        if journal is not None:
            await journal.envoyer()  # first: its batches travel while the producer's own flush waits
        await original(self)
        if journal is not None:
            await journal.confirmer()
    return flush


# -- 9: the changelogs read back in bulk -------------------------------------------------------

def _bulk_recovery(original: Callable[..., Any]) -> Callable[..., Any]:
    return ServiceTask(recovery.remplacer(original))  # mode finds its background tasks by this type


# -- 10: a record's delivery stepped before any task is made ----------------------------------

class _Reprise:
    """A coroutine already stepped once and waiting on ``attente``: awaiting this resumes it where it
    stopped (what is thrown in, a cancellation, goes to the coroutine)."""

    __slots__ = ("attente", "coro")

    def __init__(self, coro: Any, attente: Any) -> None:
        self.coro, self.attente = coro, attente

    def __await__(self) -> Any:
        coro, attente = self.coro, self.attente
        while True:
            try:
                yield attente
            except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, which decides
                try:
                    attente = coro.throw(exc)
                except StopIteration as fin:
                    return fin.value
                continue
            try:
                attente = coro.send(None)
            except StopIteration as fin:
                return fin.value


def _fermer(attentes: Iterable[Any]) -> None:
    for a in attentes:
        if asyncio.iscoroutine(a):
            a.close()  # never started: closed, not left to warn "never awaited"


def _arrete(service: Any) -> bool:
    """The service stopped or crashed: mode's wait_first answers "stopped" then."""
    return bool(service._stopped.is_set() or service._crashed.is_set())


def _drain_steps_first(original: Callable[..., Any]) -> Callable[..., Any]:
    async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> WaitResults:
        if timeout is not None or not coros or not asyncio.iscoroutine(coros[0]) or _arrete(self):
            return await original(self, *coros, timeout=timeout)
        premier, autres = coros[0], coros[1:]
        try:
            attente = premier.send(None)
        except StopIteration as fin:  # done without waiting: nothing to interrupt
            _fermer(autres)
            if _arrete(self):
                return WaitResults([], [], True)
            return WaitResults([premier], [fin.value], False)
        except BaseException:
            _fermer(autres)
            raise
        return await original(self, _Reprise(premier, attente), *autres)
    return wait_first


PATCHES = (
    Patch("recovery-resume-after-seek", Recovery, "on_recovery_completed", ("self", "generation_id"), _resume_after_seek),
    Patch("fetch-active-snapshot", driver.AIOKafkaConsumerThread, "_fetch_records",
          ("self", "consumer", "active_partitions", "timeout", "max_records"), _fetch_snapshot),
    Patch("producer-fast-path", Topic, "_get_producer", ("self",), _producer_fast_path),
    Patch("send-fast-path", Topic, "send", ("self", "key", "value", "partition", "timestamp", "headers", "schema",
                                            "key_serializer", "value_serializer", "callback", "force"), _send_fast_path),
    Patch("idempotent-producer", driver.Producer, "_settings_extra", ("self",), _idempotent_producer),
    Patch("fetch-wait", driver.AIOKafkaConsumerThread, "_create_worker_consumer", ("self", "transport"), _fetch_wait),
    Patch("true-end-offsets", driver.AIOKafkaConsumerThread, "_highwaters", ("self", "partitions"), _true_end_offsets,
          when=lambda broker: broker.true_end_offsets),
    Patch("seek-rewinds-uncommitted", driver.AIOKafkaConsumerThread, "seek_to_committed", ("self",),
          _rewind_uncommitted),
    Patch("changelog-batches", Table, "on_key_set", ("self", "key", "value"), _changelog_set),
    Patch("changelog-batches-del", Table, "on_key_del", ("self", "key"), _changelog_del),
    Patch("changelog-batches-flush", driver.Producer, "flush", ("self",), _flush_changelog),
    Patch("recovery-in-bulk", Recovery, "_slurp_changelogs", ("self",), _bulk_recovery),
    Patch("drain-steps-first", Consumer, "wait_first", ("self", "coros", "timeout"), _drain_steps_first),
)
_originals: dict[str, Callable[..., Any]] = {}


def check(patches: Iterable[Patch] = PATCHES) -> list[str]:
    """What differs from what the patches were written for; empty when all is as expected."""
    problems = [f"{package} {version(package)} is installed; these patches were tested on {expected}"
                for package, expected in TESTED.items() if version(package) != expected]
    for p in patches:
        target = _originals.get(p.name) or getattr(p.owner, p.attribute, None)
        if target is None:
            problems.append(f"{p.name}: {p.owner.__name__}.{p.attribute} no longer exists")
            continue
        if isinstance(target, ServiceTask):  # a Service's background task: its function's parameters
            target = target.fun
        params = tuple(inspect.signature(target).parameters)
        if params != p.parameters:
            problems.append(f"{p.name}: {p.owner.__name__}.{p.attribute}{params} is not {p.parameters}")
    return problems


def install(broker: BrokerProfile, patches: Iterable[Patch] = PATCHES) -> list[str]:
    """Install the patches this broker needs (once each); refuse on any mismatch. Their names."""
    chosen = [p for p in patches if p.when(broker)]
    problems = check(chosen)
    if problems:
        raise FaustPatchError("the worker patches Faust internals that changed:\n  - " + "\n  - ".join(problems)
                              + "\nPin faust-streaming and aiokafka to the tested versions, or review streams/faust_patches.py.")
    for p in chosen:
        if p.name not in _originals:
            _originals[p.name] = getattr(p.owner, p.attribute)
            setattr(p.owner, p.attribute, p.replacement(_originals[p.name]))
    return [p.name for p in chosen]
