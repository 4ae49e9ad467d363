"""The tables' changelog records, handed to the producer a batch at a time (issue 22).

Faust sends each table write as a message of its own: a ``FutureMessage``, its producer buffer's
task, ``publish_message`` with its sensors, the driver's ``send``, then aiokafka's per-message
send, and a callback per record that writes the changelog offset (a RocksDB put with tables on
disk). The hub writes four table records per signalement, and that path was ~9 % of its py-spy
samples. Here a write is serialized as Faust would (the changelog topic's own ``prepare_key`` and
``prepare_value``: the bytes recovery reads are the same) and appended to one aiokafka
``BatchBuilder`` per changelog partition; a task hands the builders to the producer when the
agent next yields, and each acknowledged builder records its last offset once.

What Faust promises is kept. A commit flushes the producer first (Faust does so before every
commit, at a rebalance and at a stop): the flush hands every pending builder over, waits for the
broker, and fails if a changelog batch was refused, so no offset is committed past a table write
the changelog does not have; every later flush fails too, a clean stop's included, so only a
new worker, from the last commit, goes on (a batch the producer would not even take counts as
refused). Records of one partition leave in the order they were written (one sender at a
time), so recovery ends on each key's latest value. Faust's own path runs whenever
this one would not do the same: in a transaction, before the producer has started, for a table
that picks its partition with the partitioner or expires windowed keys.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.types import TP

log = logging.getLogger(__name__)


class ChangelogRefuse(RuntimeError):
    """The broker did not take a changelog batch: the commit waiting for it must not happen."""


class Journal:
    """One app's pending changelog records: a builder per changelog partition being filled,
    the full ones waiting for the sender, and the batches sent since the last flush."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lots: dict[tuple[str, int], tuple[Any, Any]] = {}  # (topic, partition) -> builder, table
        self.pleins: list[tuple[str, int, Any, Any]] = []  # full builders, sent before the partition's next
        self.envoyes: list[tuple[asyncio.Future[Any], Any, TP, int]] = []
        self.verrou = asyncio.Lock()
        self.tache: asyncio.Future[None] | None = None
        self.refus: ChangelogRefuse | None = None  # once set, every flush fails

    @staticmethod
    def de(app: Any) -> Journal | None:
        """The app's journal when its writes may take this path now, else None (Faust's path)."""
        producer = app.producer
        if app.in_transaction or not producer.started or producer._producer is None:
            return None
        journal: Journal | None = app.__dict__.get("_aiguillage_journal")
        if journal is None:
            journal = app.__dict__["_aiguillage_journal"] = Journal(app)
        return journal

    def ajouter(self, table: Any, key: Any, value: Any, partition: int, tombstone: bool = False) -> None:
        """One write of ``table`` (a tombstone for a removal), to its changelog's ``partition``."""
        topic = table.changelog_topic
        k = topic.prepare_key(key, table.key_serializer, None, None)[0]
        v = None if tombstone else topic.prepare_value(value, table.value_serializer, None, None)[0]
        cle = (topic.get_topic_name(), partition)
        lot = self.lots.get(cle)
        if lot is None or lot[0].append(key=k, value=v, timestamp=None) is None:
            if lot is not None:  # full: it leaves as it is
                self.pleins.append((*cle, *lot))
            lot = self.lots[cle] = (self.app.producer._producer.create_batch(), table)
            lot[0].append(key=k, value=v, timestamp=None)  # a builder's first record always fits
        if self.tache is None or self.tache.done():
            self.tache = asyncio.ensure_future(self.envoyer())

    async def envoyer(self) -> None:
        """Hand every pending builder to the producer, each partition's in the order they were filled."""
        async with self.verrou:
            while self.lots or self.pleins:  # what was written while a send waited goes too
                lots = [*self.pleins, *((*cle, *lot) for cle, lot in self.lots.items())]
                self.pleins, self.lots = [], {}
                producer = self.app.producer._producer
                for nom, partition, builder, table in lots:
                    builder.close()  # nothing else joins it: its count is its records
                    try:
                        fut = await producer.send_batch(builder, nom, partition=partition)
                    except Exception as exc:  # noqa: BLE001 - the next flush fails with it, no commit goes past
                        log.error("changelog %s[%d]: the producer did not take a batch: %r", nom, partition, exc)
                        self.refus = self.refus or ChangelogRefuse(
                            f"changelog {nom}[{partition}]: the producer did not take a batch: {type(exc).__name__}: {exc}")
                        continue
                    self.envoyes.append((fut, table, TP(nom, partition), builder.record_count()))

    async def confirmer(self) -> None:
        """Every record written so far acknowledged, each partition's offset recorded; raises
        :class:`ChangelogRefuse` if one was refused (the patched flush calls it after aiokafka's)."""
        await self.envoyer()
        envoyes, self.envoyes = self.envoyes, []
        resultats = await asyncio.gather(*(f for f, *_ in envoyes), return_exceptions=True)
        refus = []
        for (_, table, tp, n), res in zip(envoyes, resultats, strict=True):
            if isinstance(res, BaseException):
                refus.append(f"{tp.topic}[{tp.partition}]: {type(res).__name__}: {res}")
            else:  # what Faust's per-record callback did (tables on disk: where recovery starts)
                table.data.set_persisted_offset(tp, res.offset + n - 1)
        if refus and self.refus is None:
            self.refus = ChangelogRefuse("changelog records refused by the broker: " + "; ".join(refus))
        if self.refus is not None:  # for good: a later flush (a clean stop's commit) must not commit past it
            raise self.refus
