"""streams/recovery.py (patch 9): the changelogs read back a queue's worth at a time give what
Faust's one-record-at-a-time loop gives: the same batches applied to each table, the same
offsets, the end of recovery signalled once everything is read. Both loops run on the same
records, against the same stand-in for Faust's Recovery (the attributes its loop uses)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict, deque
from types import SimpleNamespace

from faust.tables.recovery import Recovery
from faust.types import TP
from mode.utils.queues import FlowControlEvent, ThrowableQueue

from streams import recovery

A, B, S = TP("t-changelog", 0), TP("t-changelog", 1), TP("u-changelog", 0)


class Table:
    def __init__(self, nom: str, taille: int) -> None:
        self.nom, self.recovery_buffer_size, self.standby_buffer_size = nom, taille, taille
        self.appliques: list[list[int]] = []
        self.vus: list[int] = []

    def apply_changelog_batch(self, lot):
        if lot:
            self.appliques.append([e.message.offset for e in lot])

    async def on_changelog_event(self, event):
        self.vus.append(event.message.offset)


class Faux:
    """What Faust's ``_slurp_changelogs`` reads and calls on its Recovery, with Faust's meanings."""

    num_samples_required_for_estimate = 1000

    def __init__(self, highwaters: dict[TP, int], tables: dict[TP, Table], standbys: set[TP] = frozenset()) -> None:
        self.tables = SimpleNamespace(changelog_queue=file_changelog(), standbys_ready=False,
                                      on_standbys_ready=lambda: setattr(self.tables, "standbys_ready", True))
        self.app = SimpleNamespace(in_transaction=False)
        self.tp_to_table = tables
        self.active_tps, self.standby_tps = set(highwaters), set(standbys)
        self.active_highwaters = highwaters
        self.active_offsets: Counter[TP] = Counter({tp: -1 for tp in highwaters})
        self.standby_offsets: Counter[TP] = Counter()
        self._active_events_received_at: dict = {}
        self._standby_events_received_at: dict = {}
        self.buffers: defaultdict = defaultdict(list)
        self.buffer_sizes: dict = {}
        self._processing_times: deque = deque()
        self._last_active_event_processed_at = None
        self._last_flush_at = None
        self._actives_span = self._standbys_span = None
        self.signal_recovery_end = asyncio.Event()
        self.in_recovery = True
        self.should_stop = False
        self.fins = 0

    def need_recovery(self) -> bool:
        return any(hw - self.active_offsets[tp] > 0 for tp, hw in self.active_highwaters.items())

    def flush_buffers(self) -> None:
        for table, lot in self.buffers.items():
            table.apply_changelog_batch(lot)
            lot.clear()

    def _set_recovery_ended(self) -> None:
        self.in_recovery = False
        self.fins += 1

    def standby_remaining_total(self) -> int:
        return 0


def file_changelog() -> ThrowableQueue:
    """The queue Faust's TableManager gives its changelog records (a FlowControlQueue)."""
    flux = FlowControlEvent()
    flux.resume()
    return ThrowableQueue(flow_control=flux)


def record(tp: TP, offset: int):
    return SimpleNamespace(message=SimpleNamespace(tp=tp, offset=offset))


async def lire(boucle, faux: Faux, records, pendant=None) -> None:
    """Feed the records (in two parts, the loop running between them), wait for the end, stop the loop."""
    file = faux.tables.changelog_queue
    tache = asyncio.ensure_future(boucle(faux))
    moitie = len(records) // 2
    for r in records[:moitie]:
        file.put_nowait(r)
    await asyncio.sleep(0.01)
    if pendant is not None:
        pendant(file)
    for r in records[moitie:]:
        file.put_nowait(r)
    await asyncio.wait_for(faux.signal_recovery_end.wait(), timeout=5)
    while not file.empty():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)
    tache.cancel()
    await asyncio.gather(tache, return_exceptions=True)


def _records():
    # Two active partitions of one table, out of step, with a record seen twice (skipped).
    return [record(A, o) for o in range(5)] + [record(B, 0), record(A, 3)] + \
        [record(B, o) for o in range(1, 6)] + [record(A, o) for o in range(5, 8)]


def _une_lecture(boucle):
    table = Table("t", 3)
    faux = Faux({A: 7, B: 5}, {A: table, B: table})
    asyncio.run(lire(boucle, faux, _records()))
    return faux, table


def test_the_bulk_loop_applies_what_faust_s_loop_applies_and_ends_recovery_as_it_does():
    faust_loop = Recovery._slurp_changelogs.fun
    ours = recovery.remplacer(Recovery._slurp_changelogs)
    (f1, t1), (f2, t2) = _une_lecture(faust_loop), _une_lecture(ours)
    assert t2.appliques == t1.appliques and t2.vus == t1.vus
    assert sorted(o for lot in t2.appliques for o in lot) == sorted([*range(8), *range(6)])
    assert (f2.active_offsets, f2.fins, f2.in_recovery) == (f1.active_offsets, f1.fins, f1.in_recovery) == \
        (Counter({A: 7, B: 5}), 1, False)  # and `lire` saw each loop signal the end


def test_recovery_does_not_end_before_every_active_partition_is_read():
    table = Table("t", 100)
    faux = Faux({A: 4, B: 2}, {A: table, B: table})

    async def scenario():
        tache = asyncio.ensure_future(recovery.remplacer(Recovery._slurp_changelogs)(faux))
        for o in range(5):
            faux.tables.changelog_queue.put_nowait(record(A, o))
        await asyncio.sleep(0.05)
        assert not faux.signal_recovery_end.is_set() and table.appliques == []  # B is not read yet
        for o in range(3):
            faux.tables.changelog_queue.put_nowait(record(B, o))
        await asyncio.wait_for(faux.signal_recovery_end.wait(), timeout=5)
        tache.cancel()
        await asyncio.gather(tache, return_exceptions=True)

    asyncio.run(scenario())
    assert table.appliques == [[0, 1, 2, 3, 4, 0, 1, 2]]  # the end applies what the buffer held


def test_an_error_thrown_into_the_queue_is_logged_after_the_records_before_it_and_the_loop_goes_on(caplog):
    table = Table("t", 2)
    faux = Faux({A: 5}, {A: table})
    inconnu = record(TP("ailleurs", 0), 0)  # neither active nor standby: skipped with Faust's warning
    with caplog.at_level(logging.WARNING, logger="streams.recovery"):
        asyncio.run(lire(recovery.remplacer(Recovery._slurp_changelogs), faux,
                         [record(A, 0), record(A, 1), inconnu, record(A, 2), record(A, 3), record(A, 4), record(A, 5)],
                         pendant=lambda file: file._throw(RuntimeError("fetch failed"))))
    assert sorted(o for lot in table.appliques for o in lot) == list(range(6))
    assert "Error in recovery fetch failed" in caplog.text and "recovery unknown topic" in caplog.text


def test_an_app_in_a_transaction_keeps_faust_s_loop():
    appels = []

    async def original(self):
        appels.append(self)

    faux = Faux({A: 0}, {A: Table("t", 1)})
    faux.app.in_transaction = True
    asyncio.run(recovery.remplacer(original)(faux))
    assert appels == [faux]


def test_a_lot_never_holds_more_than_lot_records(monkeypatch):
    monkeypatch.setattr(recovery, "LOT", 4)
    file = file_changelog()
    for o in range(10):
        file.put_nowait(record(A, o))
    lot, erreur = recovery._prendre(file, [])
    assert len(lot) == 4 and erreur is None and file.qsize() == 6
