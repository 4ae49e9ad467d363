"""The embedded broker's memory on disk: every record of every topic, and consistent checkpoints.

The embedded broker (Tansu) keeps its topics in memory. Beside it, ``aiguillage up`` runs a
keeper that copies every record of every topic (the hub's and Faust's changelogs alike) into
SQLite as it arrives (``<data>/broker-journal.db``). Every few seconds it takes a checkpoint, a
consistent cut of the broker: the hub's processes are frozen (SIGSTOP) for the moment it takes to
read each partition's end and each consumer group's committed offsets, so that no record of the
cut lacks one it followed, and no group's offset points past it. The next start restores the
last checkpoint into a fresh broker (``restore.py``): the same records at the same offsets, the
same committed offsets, so the worker recovers its tables as after any restart.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from aiguillage.embedded.ends import true_ends

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    timestamp INTEGER, key BLOB, value BLOB, headers TEXT,
    PRIMARY KEY (topic, partition, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT, taken_at REAL NOT NULL,
    ends TEXT NOT NULL, groups TEXT NOT NULL, outbox INTEGER NOT NULL,
    frozen_ms REAL  -- how long the hub's processes were frozen for the cut
);
"""

Partition = tuple[str, int]


@dataclass(frozen=True)
class Checkpoint:
    taken_at: float
    ends: dict[Partition, int]  # the cut: records below these offsets
    groups: dict[str, dict[Partition, int]]  # committed offsets, each within the cut
    outbox: int  # the gateway's outbox seq the cut covers
    frozen_ms: float = 0.0

    def to_row(self) -> tuple[float, str, str, int, float]:
        ends = [[t, p, o] for (t, p), o in sorted(self.ends.items())]
        groups = {g: [[t, p, o] for (t, p), o in sorted(offs.items())] for g, offs in self.groups.items()}
        return self.taken_at, json.dumps(ends), json.dumps(groups), self.outbox, self.frozen_ms

    @classmethod
    def from_row(cls, taken_at: float, ends: str, groups: str, outbox: int) -> Checkpoint:
        return cls(
            taken_at,
            {(t, p): o for t, p, o in json.loads(ends)},
            {g: {(t, p): o for t, p, o in offs} for g, offs in json.loads(groups).items()},
            outbox,
        )


class Journal:
    """The SQLite side: records appended in any order, read back per partition in offset order."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # a commit survives any process's death
        self._conn.executescript(SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(checkpoints)")}
        if "frozen_ms" not in columns:  # a journal of an earlier version
            self._conn.execute("ALTER TABLE checkpoints ADD COLUMN frozen_ms REAL")
        self._lock = threading.Lock()

    def set_topics(self, partitions: dict[str, int]) -> None:
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO topics VALUES (?, ?)", partitions.items())

    def topics(self) -> dict[str, int]:
        with self._lock:
            return dict(self._conn.execute("SELECT name, partitions FROM topics").fetchall())

    def append(self, rows: list[tuple[str, int, int, int | None, bytes | None, bytes | None, str | None]]) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._conn.execute("COMMIT")

    def ends(self) -> dict[Partition, int]:
        """Per partition, the offset after the last record journaled."""
        with self._lock:
            rows = self._conn.execute("SELECT topic, partition, max(offset) + 1 FROM records GROUP BY topic, partition")
            return {(t, p): o for t, p, o in rows.fetchall()}

    def records(self, topic: str, partition: int, upto: int) -> Iterator[tuple[int, int | None, bytes | None, bytes | None, str | None]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT offset, timestamp, key, value, headers FROM records WHERE topic = ? AND partition = ? "
                "AND offset < ? ORDER BY offset", (topic, partition, upto)).fetchall()
        yield from rows

    def save(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO checkpoints (taken_at, ends, groups, outbox, frozen_ms) "
                               "VALUES (?, ?, ?, ?, ?)", checkpoint.to_row())
            self._conn.execute("DELETE FROM checkpoints WHERE id < (SELECT max(id) FROM checkpoints) - 10")

    def last(self) -> Checkpoint | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT taken_at, ends, groups, outbox FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        return Checkpoint.from_row(*row) if row else None

    def cut(self, ends: dict[Partition, int]) -> int:
        """Forget every record past ``ends`` (what the broker held after its last checkpoint:
        the next broker gives those offsets to other records). Return how many."""
        with self._lock:
            self._conn.execute("BEGIN")
            gone = 0
            for (topic, partition), end in ends.items():
                gone += self._conn.execute("DELETE FROM records WHERE topic = ? AND partition = ? AND offset >= ?",
                                           (topic, partition, end)).rowcount
            known = {t for t, _ in ends}
            for (topic,) in self._conn.execute("SELECT DISTINCT topic FROM records").fetchall():
                if topic not in known:
                    gone += self._conn.execute("DELETE FROM records WHERE topic = ?", (topic,)).rowcount
            self._conn.execute("COMMIT")
            return gone

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Keeper:
    """Copies the broker into the journal, in a thread of its own, and takes checkpoints."""

    def __init__(self, journal: Journal, bootstrap: str) -> None:
        self.journal = journal
        self.bootstrap = bootstrap
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="journal", daemon=True)
        self._task: concurrent.futures.Future[None] | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._probe: AIOKafkaConsumer | None = None
        self._stopping = False
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self._task = asyncio.run_coroutine_threadsafe(self._copy(), self._loop)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        if self._task is not None:
            try:
                self._task.result(timeout)
            except Exception as exc:  # noqa: BLE001 - reported, the stop goes on
                log.warning("journal keeper stopped with %r", exc)
        if self._probe is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._close_clients(), self._loop).result(timeout)
            except Exception as exc:  # noqa: BLE001 - a broker gone: nothing to close cleanly
                log.warning("journal keeper: closing its clients failed with %r", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    def checkpoint(self, freeze: Callable[[], None], thaw: Callable[[], None], outbox: int,
                   timeout: float = 10.0) -> Checkpoint:
        """A consistent cut, saved once the journal holds it all (see the module's docstring);
        ``outbox``: the last outbox seq the broker has for sure."""
        coro = self._checkpoint(freeze, thaw, outbox, timeout)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout + 5)

    # -- in the keeper's thread -------------------------------------------------------------

    async def _close_clients(self) -> None:
        if self._probe is not None and self._admin is not None:
            await self._probe.stop()
            await self._admin.close()
        self._probe = self._admin = None

    async def _copy(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=100,
                                    max_partition_fetch_bytes=4 * 1024 * 1024, client_id="aiguillage-journal")
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="aiguillage-journal")
        await consumer.start()
        await admin.start()
        try:
            assigned: set[TopicPartition] = set()
            next_refresh = 0.0
            while not self._stopping:
                if time.monotonic() >= next_refresh:  # new topics (Faust declares its own at start)
                    assigned = await self._follow_new_topics(consumer, admin, assigned)
                    next_refresh = time.monotonic() + 1.0
                batch = await consumer.getmany(timeout_ms=200, max_records=5000) if assigned else {}
                if not assigned:
                    await asyncio.sleep(0.2)
                rows = [(tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value,
                         json.dumps([[k, v.hex()] for k, v in r.headers]) if r.headers else None)
                        for tp, records in batch.items() for r in records]
                if rows:
                    await asyncio.to_thread(self.journal.append, rows)
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            await consumer.stop()
            await admin.close()

    async def _follow_new_topics(self, consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient,
                                 assigned: set[TopicPartition]) -> set[TopicPartition]:
        described = await admin.describe_topics(await admin.list_topics())
        partitions = {t["topic"]: len(t["partitions"]) for t in described
                      if t["partitions"] and not t["topic"].startswith("__")}
        wanted = {TopicPartition(t, p) for t, n in partitions.items() for p in range(n)}
        if wanted == assigned:
            return assigned
        self.journal.set_topics(partitions)
        journaled = self.journal.ends()
        consumer.assign(list(wanted))
        for tp in wanted - assigned:
            consumer.seek(tp, journaled.get((tp.topic, tp.partition), 0))
        for tp in wanted & assigned:  # assign() forgets positions: keep reading where we were
            consumer.seek(tp, journaled.get((tp.topic, tp.partition), 0))
        return wanted

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        """The checkpoints' admin and probe, started once: the hub is frozen while they work."""
        if self._probe is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="aiguillage-journal")
            probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                     fetch_max_wait_ms=20, client_id="aiguillage-journal-probe")
            await admin.start()
            await probe.start()
            self._admin, self._probe = admin, probe
        assert self._admin is not None
        return self._admin, self._probe

    async def _checkpoint(self, freeze: Callable[[], None], thaw: Callable[[], None], outbox: int,
                          timeout: float) -> Checkpoint:
        partitions = self.journal.topics()
        tps = [TopicPartition(t, p) for t, n in partitions.items() for p in range(n)]
        admin, probe = await self._clients()
        groups = [g for g, _ in await admin.list_consumer_groups()]
        taken_at = time.time()
        freeze()
        frozen = time.perf_counter()
        try:
            announced = await probe.end_offsets(tps) if tps else {}
            ends = await true_ends(self.bootstrap, announced, consumer=probe)
            committed = {g: await admin.list_consumer_group_offsets(g, partitions=tps) for g in groups}
        finally:
            thaw()
            frozen_ms = (time.perf_counter() - frozen) * 1000
        cut = {(tp.topic, tp.partition): end for tp, end in ends.items()}
        offsets = {g: {(tp.topic, tp.partition): min(meta.offset, cut[(tp.topic, tp.partition)])
                       for tp, meta in offs.items() if meta.offset >= 0}
                   for g, offs in committed.items()}
        checkpoint = Checkpoint(taken_at, cut, offsets, outbox, frozen_ms)
        deadline = time.monotonic() + timeout
        while True:  # the journal must hold the whole cut before the cut can stand for the broker
            journaled = await asyncio.to_thread(self.journal.ends)
            behind = {tp: end for tp, end in cut.items() if end and journaled.get(tp, 0) < end}
            if not behind:
                break
            if self.error is not None or time.monotonic() > deadline:
                raise TimeoutError(f"the journal is {len(behind)} partition(s) behind the cut: {list(behind)[:3]}")
            await asyncio.sleep(0.05)
        await asyncio.to_thread(self.journal.save, checkpoint)
        return checkpoint
