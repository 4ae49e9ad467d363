"""The one sink loop: fetch a batch per topic-partition, write it in one database transaction,
then commit that partition's offset. A concrete sink only knows its topics and its table.

At least once from Kafka + idempotent upserts = exactly-once effects in SQL:

- offsets are committed only after the database commit, so a crash (SIGKILL) re-reads
  at most the batches in flight, and the upserts make the replay harmless;
- a database that is away makes the loop wait and retry with backoff: nothing is
  committed and the consumer does not move, so its place is kept;
- a record the decoder or the database refuses for good goes to ``signalements.rejetes``
  with the reason, and the partition moves on (the batch is bisected to find it);
- SIGTERM (:meth:`Sink.stop`): the batch being written is finished and committed, then the
  consumer leaves its group. Stopping while the database is away commits nothing.

Example, a sink of one topic into one table::

    class SuivisSink(Sink):
        topics = (topics.SUIVIS,)
        schema = "Suivi"
        name = "suivis"

        def write(self, conn, rows):
            db.upsert(conn, db.suivis, rows, key="suivi_id")

    asyncio.run(SuivisSink("127.0.0.1:9092", db.make_engine(url), dlq_key).run())
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from aiguillage import logs, metrics, topics, tracing
from aiguillage.broker_profile import profile
from aiguillage.codec import AvroCodec, CodecError
from aiguillage.config import get_settings
from aiguillage.dlq import Rejet, dead_letter
from aiguillage.kafka import BrokerIndisponible, Publieur
from aiguillage.security import kafka_client_kwargs

log = logging.getLogger(__name__)
T = TypeVar("T")


class RecordRefused(Exception):
    """This record can never be written: dead-letter it and move on."""

    def __init__(self, rejet: Rejet) -> None:
        super().__init__(rejet.reason)
        self.rejet = rejet


class Stopping(Exception):
    """Raised out of a wait when the sink is asked to stop: commit nothing, leave."""


def refused_for_good(exc: BaseException) -> bool:
    """True when the database refuses these rows themselves; False when it is merely away.

    Constraint and data errors (too long, out of range, not null) and parameters that cannot
    be bound are about the rows. Everything else (connection lost, server down, locked,
    even a missing table) is waited out: retrying can succeed, dead-lettering would lose.
    """
    if isinstance(exc, (IntegrityError, DataError)):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


def refusal_reason(exc: BaseException) -> str:
    """The database's own words, first line only: the DETAIL line may quote values."""
    orig = getattr(exc, "orig", None) or exc
    diag = getattr(orig, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(orig)).splitlines()[0][:200]
    return f"the database refused the row ({type(orig).__name__}): {message}"


class Sink(ABC):
    topics: tuple[str, ...]
    schema: str
    name: str

    def __init__(
        self,
        bootstrap: str,
        engine: Engine,
        dlq_key: bytes,
        codec: AvroCodec | None = None,
        batch_size: int = 500,
        max_backoff: float = 10.0,
        group_prefix: str = "aiguillage",
    ) -> None:
        self.group_id = f"{group_prefix}-sink-{self.name}"
        self.bootstrap = bootstrap
        self.engine = engine
        self.dlq_key = dlq_key
        self.codec = codec or AvroCodec()
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self.written = 0
        self.dead_letters = 0
        self._stopping = asyncio.Event()
        self._publieur = Publieur(bootstrap, self.codec)

    @abstractmethod
    def write(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Write rows to the database, idempotently (a replay must change nothing), in ``conn``'s
        transaction. Raise nothing for a row you can skip; the base class handles refusals."""

    def row(self, value: dict[str, Any]) -> dict[str, Any]:
        """Decoded record -> table row. Raise :class:`RecordRefused` for a record that makes no sense."""
        return value

    def decode(self, record: ConsumerRecord) -> dict[str, Any]:
        try:
            return self.row(self.codec.decode(self.schema, record.value))
        except CodecError as exc:
            raise RecordRefused(Rejet(exc.code, str(exc))) from exc

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit it and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"aiguillage-sink-{self.name}",
            **kafka_client_kwargs(),
            **profile(get_settings()).group_settings(),
            # A database outage holds a batch for as long as it lasts; keep the partitions.
            max_poll_interval_ms=3_600_000,
        )
        await self._start(consumer)
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=self.batch_size)
                for tp, records in batches.items():
                    await self._flush(records)
                    await self._commit(consumer, tp, records[-1].offset + 1)
        except Stopping:
            log.info("%s: stopped while waiting; the batch in hand is not committed", self.name)
        finally:
            await consumer.stop()  # leaves the group: the partitions move at once
            await self._publieur.close()
            log.info("%s: stopped; %d rows written, %d dead letters", self.name, self.written, self.dead_letters)

    async def _tant_que(self, faire: Callable[[], Awaitable[T]], quoi: str,
                        passager: Callable[[BaseException], bool]) -> T:
        """``faire()`` until it succeeds, while it fails with what ``passager`` says will pass (a
        broker or a database away), waiting 0.5 s then twice as long up to ``max_backoff``; a stop
        ends the wait (:class:`Stopping`). Anything else is raised at once."""
        def dire(state: RetryCallState) -> None:
            metrics.REESSAIS.labels(self.name).inc()
            exc = state.outcome.exception() if state.outcome else None
            log.warning("%s: %s (%s); retrying in %.1fs", self.name, quoi, type(exc).__name__,
                        state.next_action.sleep if state.next_action else 0)

        async for tentative in AsyncRetrying(retry=retry_if_exception(passager), sleep=self._pause, before_sleep=dire,
                                             wait=wait_exponential(multiplier=0.5, max=self.max_backoff), reraise=True):
            with tentative:
                return await faire()
        raise AssertionError("unreachable")

    async def _start(self, consumer: AIOKafkaConsumer) -> None:
        await self._tant_que(consumer.start, "broker unavailable", lambda e: isinstance(e, KafkaError))

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: offset})
        except KafkaError as exc:
            # The rows are in the database; whoever reads this partition next replays them
            # from the last committed offset, and the upserts absorb it.
            log.warning("%s: offset commit of %s[%d] failed (%s); a replay will follow", self.name, tp.topic, tp.partition, type(exc).__name__)

    async def _flush(self, records: list[ConsumerRecord]) -> None:
        await self.codec.connaitre(r.value for r in records)  # a new schema id: fetched, not blocking
        decoded: list[tuple[ConsumerRecord, dict[str, Any]]] = []
        for record in records:
            try:
                decoded.append((record, self.decode(record)))
            except RecordRefused as refused:
                await self._dead_letter(record, refused.rejet)
        spans = [tracing.debut(f"sink {self.name}", r.headers, signalement_id=row.get("signalement_id"))
                 for r, row in decoded] if tracing.ACTIF else []
        try:
            await self._write_or_bisect(decoded)
        finally:
            for span in spans:
                tracing.fin(span)

    async def _write_or_bisect(self, decoded: list[tuple[ConsumerRecord, dict[str, Any]]]) -> None:
        """Write the batch; if the database refuses it, halve it until the refused rows are alone."""
        if not decoded:
            return
        try:
            await self._write_retrying([row for _, row in decoded])
        except Exception as exc:
            if not refused_for_good(exc):
                raise
            if len(decoded) == 1:
                await self._dead_letter(decoded[0][0], Rejet("sql-refuse", refusal_reason(exc)))
                return
            half = len(decoded) // 2
            await self._write_or_bisect(decoded[:half])
            await self._write_or_bisect(decoded[half:])

    async def _write_retrying(self, rows: list[dict[str, Any]]) -> None:
        """Write in one transaction; while the database is away, wait and retry (offsets untouched).
        In a thread: a slow or absent database must not stall the consumer's heartbeats."""
        await self._tant_que(lambda: asyncio.to_thread(self._transaction, rows), "database unavailable",
                             lambda e: isinstance(e, Exception) and not refused_for_good(e))
        self.written += len(rows)
        metrics.ECRITURES.labels(self.name).inc(len(rows))

    def _transaction(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            self.write(conn, rows)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
        raise Stopping

    async def _dead_letter(self, record: ConsumerRecord, rejet: Rejet) -> None:
        with logs.record(topic=record.topic, partition=record.partition, offset=record.offset):
            log.warning("%s: record %s[%d]@%d dead-lettered: %s", self.name, record.topic, record.partition,
                        record.offset, rejet.reason)
        dl = dead_letter(
            self.dlq_key,
            source="hub",
            stage=f"sink-{self.name}",
            rejet=rejet,
            payload=record.value or b"",
            original_key=record.key,
            original_topic=record.topic,
            original_partition=record.partition,
            original_offset=record.offset,
        )
        # Not committed, not dropped: wait for the broker like for the database.
        await self._tant_que(lambda: self._publieur.send(topics.REJETES, "DeadLetter", dl, key=record.key),
                             "cannot dead-letter yet, broker unavailable", lambda e: isinstance(e, BrokerIndisponible))
        self.dead_letters += 1
        metrics.ERREURS_SINK.labels(self.name).inc()
        metrics.DLQ.labels("hub", f"sink-{self.name}", rejet.code).inc()
