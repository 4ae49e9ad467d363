"""The embedded broker with its journal and the gateway's outbox: what ``aiguillage up`` runs on.

Started, it restores the last checkpoint of the previous run (``restore.py``); running, it takes
a checkpoint every ``AIGUILLAGE_CHECKPOINT_INTERVAL`` seconds (``journal.py``) and prunes the
outbox of what a checkpoint covers; stopped cleanly, it takes a last one with nothing running,
so that the next start finds the broker exactly as it was.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from aiokafka.errors import KafkaError

from aiguillage.broker import EmbeddedBroker
from aiguillage.embedded.journal import Checkpoint, Journal, Keeper
from aiguillage.embedded.outbox import Outbox
from aiguillage.embedded.restore import Restored, restore
from aiguillage.kafka import PUBLISH_TIMEOUT

JOURNAL, OUTBOX = "broker-journal.db", "outbox.db"


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # gone already: the supervisor will see it


class DurableBroker:
    def __init__(self, data_dir: Path, say: Callable[[str], None]) -> None:
        self.data_dir = data_dir
        self.say = say
        self.journal = Journal(data_dir / JOURNAL)
        self.outbox = Outbox(data_dir / OUTBOX)
        self.broker: EmbeddedBroker | None = None
        self.keeper: Keeper | None = None
        self._covered = 0  # outbox seq covered by the checkpoint before the last

    @property
    def outbox_path(self) -> Path:
        return self.outbox.path

    @property
    def url(self) -> str:
        assert self.broker is not None
        return self.broker.url

    def start(self) -> Restored | None:
        """Start a fresh broker and put the last checkpoint back into it."""
        self.broker = EmbeddedBroker(log_file=self.data_dir / "log" / "tansu.log")
        (self.data_dir / "log").mkdir(parents=True, exist_ok=True)
        self.broker.start()
        restored = asyncio.run(restore(self.journal, self.outbox, self.broker.bootstrap))
        self.keeper = Keeper(self.journal, self.broker.bootstrap)
        self.keeper.start()
        return restored

    def alive(self) -> bool:
        return (self.broker is not None and self.broker.process is not None and self.broker.process.poll() is None
                and self.keeper is not None and self.keeper.error is None)

    def checkpoint(self, pids: Iterable[int]) -> Checkpoint | None:
        """A checkpoint while ``pids`` run: they are frozen for the moment of the cut. None when it
        could not be taken (the broker going away, say): the previous one stands, and the outbox
        keeps everything since."""
        assert self.keeper is not None
        frozen = list(pids)
        # What the gateway appended a publish timeout ago has been acknowledged or refused by now.
        covered = self.outbox.watermark(time.time() - PUBLISH_TIMEOUT - 5) if frozen else self.outbox.last()
        try:
            checkpoint = self.keeper.checkpoint(lambda: _signal(frozen, signal.SIGSTOP),
                                                lambda: _signal(frozen, signal.SIGCONT), covered)
        except (TimeoutError, KafkaError, OSError) as exc:
            self.say(f"[yellow][up] no checkpoint this time ({type(exc).__name__}: {exc}); the last one stands[/]")
            return None
        self.outbox.prune(self._covered)
        self._covered = covered
        return checkpoint

    def stop(self, last_checkpoint: bool) -> Checkpoint | None:
        """Stop the broker; with ``last_checkpoint`` (nothing else runs), keep it all first."""
        checkpoint = None
        try:
            if last_checkpoint and self.alive():
                checkpoint = self.checkpoint(())
        finally:
            if self.keeper is not None:
                self.keeper.stop()
            if self.broker is not None:
                self.broker.stop()
        return checkpoint

    def kill(self) -> None:
        """What is left of a broker that died: its keeper stops, and nothing is checkpointed."""
        if self.keeper is not None:
            self.keeper.stop()
        if self.broker is not None:
            self.broker.stop()
