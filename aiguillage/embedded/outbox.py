"""The gateway's outbox in the embedded mode: what it answered 202 for survives the broker.

The embedded broker keeps its topics in memory. Before the gateway sends a signalement or a
suivi to it, it appends the record here (SQLite, committed); only then does it publish and
answer 202. If the broker, a process or ``aiguillage up`` itself dies, the next start restores
the broker's journal (``aiguillage/embedded/journal.py``) and sends again what the outbox holds
past the journal's last checkpoint: the worker drops what it has seen (same ``signalement_id``),
routes the rest. A record is kept until a checkpoint covers it, then pruned.

Only ``aiguillage up`` on its embedded broker sets ``AIGUILLAGE_OUTBOX``; on Apache Kafka a 202 is
``acks=all`` on replicated partitions and nothing is written here.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    topic TEXT NOT NULL,
    key BLOB,
    value BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Entry:
    seq: int
    created_at: float
    topic: str
    key: bytes | None
    value: bytes


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    # WAL: a committed append survives the death of any process (not of the machine's power,
    # which synchronous=FULL would add at a cost per request: not the embedded mode's promise).
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


class Outbox:
    """Appended by the gateway (one process); read and pruned by ``aiguillage up``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._lock = threading.Lock()  # one connection, used from the event loop and threads

    def append_many(self, records: list[tuple[str, bytes, bytes | None]]) -> None:
        """A batch's records ``(topic, value, key)``, in one transaction: all kept, or none."""
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany("INSERT INTO outbox (created_at, topic, key, value) VALUES (?, ?, ?, ?)",
                                       [(now, topic, key, value) for topic, value, key in records])
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def watermark(self, before: float) -> int:
        """The last seq appended before ``before`` (epoch seconds); 0 if none."""
        with self._lock:
            row = self._conn.execute("SELECT max(seq) FROM outbox WHERE created_at <= ?", (before,)).fetchone()
        return int(row[0] or 0)

    def last(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0])

    def after(self, seq: int) -> Iterator[Entry]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, created_at, topic, key, value FROM outbox WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
        for row in rows:
            yield Entry(*row)

    def prune(self, upto: int) -> int:
        """Forget what a checkpoint covers (seq <= ``upto``)."""
        with self._lock:
            return self._conn.execute("DELETE FROM outbox WHERE seq <= ?", (upto,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()
