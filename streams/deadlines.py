"""The first-contact deadlines' index: which open signalements are due by a date, in date order.

The life cycle's timer looks, every minute, for signalements past their first-contact date and
not yet taken in charge. Reading the whole ``cycles`` table for that (a JSON decode per entry)
froze the worker for seconds at a few hundred thousand open signalements, every minute. This
index, a cache of that table kept by the life-cycle agent (one update per entry written) and
rebuilt after each rebalance, answers with the due ones only.

In memory (with ``memory://`` tables): a dict. On disk (``rocksdb://``): keys
``e<date>\\0<id>`` (sorted by date) and ``s<id>`` -> its ``e`` key, so that memory does not grow
with the open signalements.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from streams import disk


class Echeances(Protocol):
    def mettre(self, sid: str, echeance: str | None) -> None: ...
    def dues(self, avant: str) -> Iterator[tuple[str, str]]: ...
    def effacer(self) -> None: ...
    def fermer(self) -> None: ...


class EcheancesEnMemoire:
    def __init__(self) -> None:
        self.par_sid: dict[str, str] = {}

    def mettre(self, sid: str, echeance: str | None) -> None:
        if echeance is None:
            self.par_sid.pop(sid, None)
        else:
            self.par_sid[sid] = echeance

    def dues(self, avant: str) -> Iterator[tuple[str, str]]:
        """``(sid, date)`` with a date before ``avant`` (ISO dates compare as strings), by date."""
        return iter(sorted(((s, e) for s, e in self.par_sid.items() if e < avant), key=lambda x: (x[1], x[0])))

    def effacer(self) -> None:
        self.par_sid.clear()

    def fermer(self) -> None:
        self.par_sid.clear()


class EcheancesSurDisque:
    def __init__(self, chemin: Path) -> None:
        self.index = disk.IndexLocal(chemin)

    def mettre(self, sid: str, echeance: str | None) -> None:
        self.index.placer(sid.encode(), None if echeance is None else b"e%s\0%s" % (echeance.encode(), sid.encode()))

    def dues(self, avant: str) -> Iterator[tuple[str, str]]:
        fin = b"e" + avant.encode()
        out = []  # read first: the caller awaits between sends, and the index changes meanwhile
        for cle in self.index.depuis(b"e"):
            if cle >= fin:
                break
            echeance, _, sid = cle[1:].partition(b"\0")
            out.append((sid.decode(), echeance.decode()))
        return iter(out)

    def effacer(self) -> None:
        self.index.effacer()

    def fermer(self) -> None:
        self.index.fermer()
