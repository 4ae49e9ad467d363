"""The waiting files' index: each team's waiting signalements, in file order, in memory or on disk.

The team agent needs, when a case closes, the next waiting signalement of a file (effective
priority with ageing, then age, then id: :mod:`aiguillage.routing.priorite`). The ``dossiers``
table holds them, but in no order; this index is a cache of it, rebuilt after each rebalance.

In memory it cost 227 bytes per waiting signalement (measured with ``tracemalloc``, issue 8):
with ``rocksdb://`` tables, the only state that grew with the open work. On disk
(:class:`FilesSurDisque`, a local RocksDB beside the tables) a file is kept sorted by
(base priority, reception, id). Within one base priority that is the file order, since the
oldest has aged most; so the file is the merge of at most nine sorted runs, read lazily: a
closure reads the one or two items it gives out, not the whole file.

After a rebalance or a restart the index is rebuilt from the dossiers the worker holds, a slice at
a time between the team agent's batches (:class:`Reconstruction`): one pass over 400,000 dossiers
took 27 s, and the worker placed no new signalement meanwhile (issue 22). Only a decision that
reads a file (a freed case's next signalement) needs it whole; it finishes the pass at once.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from aiguillage.routing import equipe as core
from aiguillage.routing import priorite as prio
from aiguillage.routing.priorite import EnAttente
from streams import disk

PRIORITES = range(1, 10)  # an Affectation's priorité (1 most urgent); escalations stay within
_ORIGINE = datetime(1, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class FilesAttente(Protocol):
    def ajouter(self, equipe: str, item: EnAttente) -> None: ...
    def retirer(self, equipe: str, sid: str) -> None: ...
    def ajouter_neufs(self, items: Iterable[tuple[str, EnAttente]]) -> None: ...
    def en_ordre(self, equipe: str, maintenant: datetime, jours_par_niveau: int) -> Iterator[EnAttente]: ...
    def effacer(self) -> None: ...
    def fermer(self) -> None: ...


class FilesEnMemoire:
    """A dict per team (the default, and with ``memory://`` tables, whose state is in memory anyway)."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, EnAttente]] = {}

    def ajouter(self, equipe: str, item: EnAttente) -> None:
        self.files.setdefault(equipe, {})[item.signalement_id] = item

    def retirer(self, equipe: str, sid: str) -> None:
        self.files.get(equipe, {}).pop(sid, None)

    def ajouter_neufs(self, items: Iterable[tuple[str, EnAttente]]) -> None:
        for equipe, item in items:
            self.ajouter(equipe, item)

    def en_ordre(self, equipe: str, maintenant: datetime, jours_par_niveau: int) -> Iterator[EnAttente]:
        return prio.ordonner(list(self.files.get(equipe, {}).values()), maintenant, jours_par_niveau)

    def effacer(self) -> None:
        self.files.clear()

    def fermer(self) -> None:
        self.files.clear()


def _instant(recu_le: datetime) -> bytes:
    """A fixed-width, sortable form of a date-time (microseconds since year 1, UTC)."""
    if recu_le.tzinfo is None:
        recu_le = recu_le.replace(tzinfo=UTC)
    return b"%020d" % ((recu_le - _ORIGINE) // _US)


class FilesSurDisque:
    """The files in a RocksDB of this worker (a cache: wiped when opened and on each rebalance).

    Keys: ``f<team>\\0<priority>\\0<instant>\\0<id>`` (the files, sorted) and ``s<team>\\0<id>``
    -> its ``f`` key (to remove or re-file a signalement whose priority changed).
    """

    def __init__(self, chemin: Path) -> None:
        self.index = disk.IndexLocal(chemin)

    @staticmethod
    def _cles(equipe: str, item: EnAttente) -> tuple[bytes, bytes]:
        """Its reference (team, id) and its place in the file."""
        e, sid = equipe.encode(), item.signalement_id.encode()
        return b"%s\0%s" % (e, sid), b"f%s\0%d\0%s\0%s" % (e, item.priorite, _instant(item.recu_le), sid)

    def ajouter(self, equipe: str, item: EnAttente) -> None:
        self.index.placer(*self._cles(equipe, item))

    def retirer(self, equipe: str, sid: str) -> None:
        self.index.placer(b"%s\0%s" % (equipe.encode(), sid.encode()), None)

    def ajouter_neufs(self, items: Iterable[tuple[str, EnAttente]]) -> None:
        """Signalements not in the index yet (a rebuild's), in one write."""
        self.index.placer_neufs([self._cles(equipe, item) for equipe, item in items])

    def _serie(self, equipe: bytes, p: int) -> Iterator[EnAttente]:
        prefixe = b"f%s\0%d\0" % (equipe, p)
        for cle in self.index.depuis(prefixe):
            if not cle.startswith(prefixe):
                return
            instant, _, sid = cle[len(prefixe):].partition(b"\0")
            yield EnAttente(sid.decode(), p, _ORIGINE + int(instant) * _US)

    def en_ordre(self, equipe: str, maintenant: datetime, jours_par_niveau: int) -> Iterator[EnAttente]:
        e = equipe.encode()
        return heapq.merge(*(self._serie(e, p) for p in PRIORITES),
                           key=lambda i: prio.cle_file(i, maintenant, jours_par_niveau))

    def effacer(self) -> None:
        self.index.effacer()

    def fermer(self) -> None:
        self.index.fermer()


def instantane(table: Any) -> Iterable[tuple[str, dict | None]]:
    """A Faust table's entries as they are now, for a pass that spans the agent's writes: RocksDB's
    iterator reads a snapshot, lazily; a dict's would break at the agent's first write, so a table
    in memory is copied (references only: its values are replaced, never changed in place)."""
    from faust.stores.rocksdb import Store as RocksDB

    return table.items() if isinstance(table.data, RocksDB) else list(table.items())


class Reconstruction:
    """The files rebuilt from the dossiers table, in slices (:meth:`tranche`) the team agent runs
    between its batches. The pass reads the table as it was when it began; a dossier the agent
    writes meanwhile is filed by the agent's own write (:meth:`ecrit`) and skipped by the pass."""

    def __init__(self, files: FilesAttente, dossiers: Iterable[tuple[str, dict | None]]) -> None:
        self.files, self._dossiers = files, iter(dossiers)
        self.ecrits: set[str] = set()  # written since the pass began: already as the table says
        self.lus = self.en_attente = 0
        self.fini = False
        self.debut = time.monotonic()

    def ecrit(self, sid: str) -> None:
        self.ecrits.add(sid)

    def abandonner(self) -> None:
        """Stop reading the table (a rebalance): Faust leaves a revoked partition's RocksDB to the
        garbage collector, and an iterator still open on it would keep it, and its lock."""
        fermer = getattr(self._dossiers, "close", None)
        if fermer is not None:
            fermer()
        self._dossiers = iter(())

    def tranche(self, pas: int | None = None, duree: float | None = None) -> None:
        """At most ``pas`` dossiers (all that are left: None), for about ``duree`` seconds at most."""
        fin = None if duree is None else time.monotonic() + duree
        lot: list[tuple[str, EnAttente]] = []
        n = 0
        for sid, stocke in itertools.islice(self._dossiers, pas):
            n += 1
            if sid not in self.ecrits and (item := core.en_file(sid, stocke)) is not None:
                lot.append(item)
            if fin is not None and n % 64 == 0 and time.monotonic() > fin:
                break
        else:
            self.fini = pas is None or n < pas
        self.lus += n
        self.files.ajouter_neufs(lot)
        self.en_attente += len(lot)
