"""Two fixes to faust-streaming's recovery, installed by every worker (production too).

Measured on a worker restarted with records waiting on its input (tests/test_pannes.py,
and a 16-restart probe): Faust 0.15 processed the first waiting record twice in about half
the restarts and dropped one for good in about one restart in eight.

(a) ``Recovery.on_recovery_completed`` resumes the stream partitions *before* it seeks to
    the committed offsets and resumes the flow: already-fetched records run, are committed,
    the seek rewinds (duplicates), and ``flow_control.resume()`` clears a queue still holding
    one (loss). The fix defers the resume until seek and flow resume are done: the order
    faust-streaming PR #217 gave ``_resume_streams`` only (issues #216, #596).
(b) Faust hands aiokafka its *live* set of active partitions; when that set is empty,
    aiokafka reads "all partitions", returns input records Faust then discards, and its
    position has moved past them (a stall until the next restart). Faust checks that the set
    is not empty before it queues the fetch, but the fetch runs later on the consumer thread,
    by when a rebalance or a table recovery may have paused everything: the fix takes a
    snapshot when the fetch runs and fetches nothing if it is empty. (A snapshot that kept the
    live empty set still lost one record sent during a restarted worker's recovery, in about
    one run in four of tests/test_agregats_flux.py.)

With both: 0 duplicates, 0 losses over 19 restarts of the same probe.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_on_recovery_completed = Recovery.on_recovery_completed
_fetch_records = AIOKafkaConsumerThread._fetch_records
_installed = False


async def _resume_after_seek(self: Recovery, generation_id: int = 0) -> None:
    consumer = self.app.consumer
    deferred: list[Any] = []
    consumer.resume_partitions = deferred.append  # type: ignore[method-assign]
    try:
        await _on_recovery_completed(self, generation_id)
    finally:
        del consumer.resume_partitions  # the class method again
        if self.app.consumer_generation_id == generation_id:
            for tps in deferred:
                consumer.resume_partitions(tps)


async def _fetch_snapshot(self: Any, consumer: Any, active_partitions: Any, timeout: Any = None,
                          max_records: Any = None) -> Any:
    if active_partitions is None:  # a client-only app: every partition, as Faust meant
        return await _fetch_records(self, consumer, None, timeout=timeout, max_records=max_records)
    snapshot = frozenset(active_partitions)
    if not snapshot:  # nothing active now: an empty set would make aiokafka drain every partition
        await asyncio.sleep(min(timeout or 0.0, 0.05))  # no busy loop while everything is paused
        return {}
    return await _fetch_records(self, consumer, snapshot, timeout=timeout, max_records=max_records)


def installer() -> None:
    global _installed
    if not _installed:
        Recovery.on_recovery_completed = _resume_after_seek  # type: ignore[method-assign]
        AIOKafkaConsumerThread._fetch_records = _fetch_snapshot  # type: ignore[method-assign]
        _installed = True
