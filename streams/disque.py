"""Local RocksDB databases of a worker for its derived indexes (caches rebuilt from a table).

Raw bytes in and out; small memtables, as the tables' (:mod:`streams.topology`). Each index is
wiped when opened: its table, recovered from its changelog, is the state; the index follows it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def ouvrir(chemin: Path) -> Any:
    from rocksdict import Options, Rdict

    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(2 * 1024 * 1024)
    shutil.rmtree(chemin, ignore_errors=True)
    chemin.parent.mkdir(parents=True, exist_ok=True)
    return Rdict(str(chemin), options)


def fermer(db: Any, chemin: Path) -> None:
    db.close()
    shutil.rmtree(chemin, ignore_errors=True)
