"""``aiguillage up``'s supervision: a process of the hub that dies is started again, with a backoff.

Each death is logged with the process's exit status and its log file. A process that keeps
dying (``GIVE_UP_AFTER`` deaths, each within ``STEADY`` seconds of its start) is given up on:
the supervisor raises :class:`GaveUp` naming it and its log, and ``up`` stops the hub. A process
that ran ``STEADY`` seconds before it died starts again from the first delay.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiguillage import metrics
from aiguillage.runtime import Hub

GIVE_UP_AFTER = 5
STEADY = 60.0  # seconds a process must run for its next death to count as a first one
FIRST_DELAY, MAX_DELAY = 1.0, 30.0


class GaveUp(RuntimeError):
    """A process of the hub died too often in a row."""


@dataclass
class _Watch:
    started_at: float
    deaths: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    hub: Hub
    say: Callable[[str], None]
    done_ok: frozenset[str] = frozenset({"demo"})  # may end on its own with status 0
    watches: dict[str, _Watch] = field(default_factory=dict)
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def start(self, name: str, *extra: str) -> None:
        self.extra[name] = extra
        self.hub.start(name, *extra)
        self.watches[name] = _Watch(time.monotonic())

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.hub.processes.items() if p.poll() is None}

    def tick(self) -> list[str]:
        """Restart what is due; return the names restarted now."""
        now = time.monotonic()
        restarted = []
        for name, watch in list(self.watches.items()):
            proc = self.hub.processes.get(name)
            if watch.restart_at is None and proc is not None and proc.poll() is not None:
                if name in self.done_ok and proc.returncode == 0:
                    del self.watches[name]
                    continue
                self._died(name, watch, proc.returncode, now)
                metrics.process_mort(proc.pid, self.hub.env.get("PROMETHEUS_MULTIPROC_DIR"))
            if watch.restart_at is not None and now >= watch.restart_at:
                self.hub.start(name, *self.extra.get(name, ()))
                watch.started_at, watch.restart_at = time.monotonic(), None
                restarted.append(name)
                self.say(f"[up] {name} started again (pid {self.hub.processes[name].pid})")
        return restarted

    def _died(self, name: str, watch: _Watch, status: int | None, now: float) -> None:
        log = self.hub.log_dir / f"{name}.log"
        watch.deaths = 1 if now - watch.started_at >= STEADY else watch.deaths + 1
        how = f"killed by {signal.Signals(-status).name}" if status is not None and status < 0 else f"status {status}"
        if watch.deaths >= GIVE_UP_AFTER:
            raise GaveUp(f"{name} died {watch.deaths} times in a row ({how} last); giving up. Its log: {log}")
        delay = min(MAX_DELAY, FIRST_DELAY * 2 ** (watch.deaths - 1))
        watch.restart_at = now + delay
        self.say(f"[up] {name} exited ({how}); starting it again in {delay:.0f} s (death {watch.deaths} of "
                 f"{GIVE_UP_AFTER} allowed in a row). Its log: {log}")
