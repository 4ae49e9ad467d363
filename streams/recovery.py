"""A restarted worker's tables read back from their changelogs, a queue's worth at a time (issue 22).

Faust's ``Recovery._slurp_changelogs`` takes the changelog records from its queue one at a time,
each through ``asyncio.wait_for`` (a task and a timer per record), and after each one asks
whether recovery is over, which sums what remains over every active partition. A py-spy profile
of the hub restarted on Kafka after 30,000 signalements, tables in memory (~230,000 records read
back at ~15,000/s), gave the loop 15 % of the samples, of which ``wait_for`` 6 % and that question
7 %. Here :func:`lire_changelogs` takes every record already waiting (up to ``LOT``), applies each
as Faust does, and asks once per lot; it awaits the queue, with Faust's 5-second timeout, only
when the queue is empty. Patch 9 of ``streams/faust_patches.py`` installs it.

Kept from Faust, record by record: the offset seen per partition (a record at or below it is
skipped), the table's buffer (applied when it holds the table's ``recovery_buffer_size``), the
table's changelog hook, the timings of the remaining-time estimate; then, per lot, the end of
recovery (buffers applied, ``signal_recovery_end`` set) and the standbys' readiness. One
difference: a record of a partition neither active nor standby is skipped with Faust's warning,
where Faust's loop applied it to the previous record's table. An app in a transaction
(exactly-once) keeps Faust's loop: its end of recovery also looks for aborted transactions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from time import monotonic
from typing import Any

from faust.utils.tracing import finish_span

log = logging.getLogger(__name__)

LOT = 1000  # records taken from the queue before the end of recovery is asked again
ATTENTE_S = 5.0  # Faust's wait for a record when the queue is empty


def remplacer(original: Any) -> Callable[[Any], Any]:
    """Faust's ``Recovery._slurp_changelogs`` (``original``, a mode ServiceTask: ``await original(self)``)
    -> the loop that replaces it (an app in a transaction still runs Faust's)."""

    async def lire_changelogs(self: Any) -> None:
        if self.app.in_transaction:
            return await original(self)
        file = self.tables.changelog_queue
        while not self.should_stop:
            try:
                self.signal_recovery_end.clear()
                lot: list[Any] = []
                if file.empty():
                    try:
                        lot.append(await asyncio.wait_for(file.get(), timeout=ATTENTE_S))
                    except TimeoutError:
                        if self.should_stop:
                            return
                        _fin_eventuelle(self)
                        continue
                lot, erreur = _prendre(file, lot)
                for event in lot:
                    await _appliquer(self, event)
                _fin_eventuelle(self)
                _standbys(self)
                if erreur is not None:
                    raise erreur
            except Exception as exc:  # noqa: BLE001 - Faust's loop logs and goes on, so does this one
                log.warning("Error in recovery %s", exc)

    return lire_changelogs


def _prendre(file: Any, lot: list[Any]) -> tuple[list[Any], BaseException | None]:
    """What the queue holds now, up to ``LOT``; an error thrown into it stops the lot (it is raised
    once the records taken before it are applied, as Faust's ``get`` would have raised it then)."""
    try:
        while len(lot) < LOT and not file.empty():
            lot.append(file.get_nowait())
    except Exception as exc:  # noqa: BLE001 - raised by the caller after the lot
        return lot, exc
    return lot, None


async def _appliquer(self: Any, event: Any) -> None:
    """One changelog record, as Faust's loop handles it."""
    now = monotonic()
    tp, offset = event.message.tp, event.message.offset
    actif = tp in self.active_tps
    if actif:
        table, offsets = self.tp_to_table[tp], self.active_offsets
        taille = self.buffer_sizes.setdefault(tp, table.recovery_buffer_size)
        self._active_events_received_at[tp] = now
    elif tp in self.standby_tps:
        table, offsets = self.tp_to_table[tp], self.standby_offsets
        taille = self.buffer_sizes.setdefault(tp, table.standby_buffer_size)
        self._standby_events_received_at[tp] = now
    else:
        log.warning("recovery unknown topic %s offset %s", tp, offset)
        return
    vu = offsets.get(tp, None)
    if vu is not None and offset <= vu:
        return
    offsets[tp] = offset
    tampon = self.buffers[table]
    tampon.append(event)
    await table.on_changelog_event(event)
    if len(tampon) >= taille:
        table.apply_changelog_batch(tampon)
        tampon.clear()
        self._last_flush_at = now
    if actif:
        apres = monotonic()
        if self._last_active_event_processed_at is not None:
            temps = self._processing_times
            temps.append(apres - self._last_active_event_processed_at)
            if len(temps) > self.num_samples_required_for_estimate:
                temps.popleft()
        self._last_active_event_processed_at = apres


def _fin_eventuelle(self: Any) -> None:
    """Recovery over (nothing left on any active partition): the buffers applied, the waiter told."""
    if self.in_recovery and not self.need_recovery():
        self.flush_buffers()
        self._set_recovery_ended()
        if self._actives_span is not None:
            self._actives_span.set_tag("Actives-Ready", True)
        self.signal_recovery_end.set()


def _standbys(self: Any) -> None:
    ready = self._standbys_span is None and self.tables.standbys_ready
    if not ready and not self.standby_remaining_total():
        if self._standbys_span:
            finish_span(self._standbys_span)
            self._standbys_span = None
        self.tables.on_standbys_ready()
