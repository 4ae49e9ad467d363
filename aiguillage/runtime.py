"""Run the hub's processes (worker, gateway, sinks) side by side: what ``aiguillage up`` and the
end-to-end tests both use. Each component is a real OS process, so it can be stopped with
SIGTERM (clean) or SIGKILL (crash) like in production.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

COMPONENTS: dict[str, list[str]] = {
    "worker": ["worker"],
    "gateway": ["gateway"],
    "sink-affectations": ["sink", "affectations"],
    "sink-suivis": ["sink", "suivis"],
    "sink-agregats": ["sink", "agregats"],
    "sink-retours": ["sink", "retours"],
    "sink-audit": ["sink", "audit"],
    "demo": ["demo"],
}


_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not between fork and exec
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` after which the kernel sends the child SIGTERM when its parent dies,
    however it dies (SIGKILL included), so that nothing is left running; it only calls a function
    resolved at import, nothing that takes a lock after the fork. The kernel means the parent
    *thread*: spawned from another thread (a pool's), the child would die with that thread, so
    there the answer is None and the caller stops its children itself."""
    return _die_with_parent if threading.current_thread() is threading.main_thread() else None


DEV_SECRETS = ("AIGUILLAGE_PSEUDONYM_KEY", "AIGUILLAGE_DLQ_KEY")


def dev_secrets(env: dict[str, str], data_dir: Path) -> list[str]:
    """Fill the secrets the environment lacks with development keys kept in ``data_dir``
    (``dev-keys.json``, mode 0600), made once: a restart on the same data keeps the same
    pseudonyms and can still read the DLQ. Return the variables taken from there."""
    path = data_dir / "dev-keys.json"
    kept: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [var for var in DEV_SECRETS if not env.get(var)]
    for var in missing:
        env[var] = kept.setdefault(var, secrets.token_hex(32))
    if missing:
        path.touch(mode=0o600)
        path.write_text(json.dumps(kept, indent=2))
    return missing


@dataclass
class Hub:
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start component ``name``; ``env`` adds to the hub's environment (its own principal, say)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiguillage", *COMPONENTS[name], *extra],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group: a Ctrl-C in the terminal reaches the parent only, which
            # stops the components in order (SIGTERM) before the broker they need to commit.
            process_group=0,
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - only a prctl call, see die_with_parent
        )
        self.processes[name] = proc
        return proc

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def stop_all(self, timeout: float = 20.0) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in list(self.processes):
            proc = self.processes.pop(name)
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def dead(self) -> list[str]:
        return [n for n, p in self.processes.items() if p.poll() is not None]


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def child_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    return env
