"""Local RocksDB databases of a worker for its derived indexes (caches rebuilt from a table).

Raw bytes in and out; small memtables and block cache, as the tables' (:mod:`streams.topology`).
Each index is wiped when opened: its table, recovered from its changelog, is the state; the
index follows it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streams.topology import ROCKSDB


class IndexLocal:
    """Sorted keys, each found again by a back-reference (its id): placing an id again moves it.

    The keys sort as the index reads them (``cle``, any prefix but ``s``); ``s<ref>`` -> its key.
    """

    def __init__(self, chemin: Path) -> None:
        from rocksdict import BlockBasedOptions, Cache, Options, Rdict

        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_write_buffer_size(ROCKSDB["write_buffer_size"])
        options.set_max_write_buffer_number(ROCKSDB["max_write_buffer_number"])
        table = BlockBasedOptions()  # RocksDB's default block cache is 32 MB
        table.set_block_cache(Cache(ROCKSDB["block_cache_size"]))
        options.set_block_based_table_factory(table)
        shutil.rmtree(chemin, ignore_errors=True)
        chemin.parent.mkdir(parents=True, exist_ok=True)
        self.chemin = chemin
        self.db: Any = Rdict(str(chemin), options)

    def placer(self, ref: bytes, cle: bytes | None) -> None:
        """``ref`` now under ``cle`` (None: out of the index)."""
        renvoi = b"s" + ref
        ancienne = self.db.get(renvoi)
        if ancienne == cle:
            return
        if ancienne is not None:
            del self.db[ancienne]
        if cle is None:
            del self.db[renvoi]
        else:
            self.db[cle] = b""
            self.db[renvoi] = cle

    def placer_neufs(self, paires: list[tuple[bytes, bytes]]) -> None:
        """``(ref, cle)`` pairs whose refs are not in the index, in one write batch."""
        from rocksdict import WriteBatch

        lot = WriteBatch(raw_mode=True)
        for ref, cle in paires:
            lot.put(cle, b"")
            lot.put(b"s" + ref, cle)
        self.db.write(lot)

    def depuis(self, debut: bytes) -> Iterator[bytes]:
        """The keys from ``debut`` on, in order (a snapshot: writes meanwhile are not seen)."""
        return self.db.keys(from_key=debut)

    def effacer(self) -> None:
        # Every key sorts below "t". (Not a close and reopen: an iterator still referenced keeps
        # the database, and its lock, alive.)
        self.db.delete_range(b"\0", b"t")

    def fermer(self) -> None:
        self.db.close()
        shutil.rmtree(self.chemin, ignore_errors=True)
