"""The worker's garbage-collector settings (streams/gc_tuning.py): set, and set by `run`."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from streams import gc_tuning, worker


def test_regler_sets_the_thresholds_and_freezes_start_up_objects() -> None:
    # In a child: the settings are process-wide and the test process must keep its own.
    code = (
        "import gc; from streams import gc_tuning as r; r.regler(); "
        "print(gc.get_threshold() == r.SEUILS, gc.get_freeze_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "True"
    assert int(out[1]) > 1_000  # modules, classes, functions of what was imported


def test_the_worker_sets_them_after_building_the_app(monkeypatch) -> None:
    appels: list[str] = []

    class Worker:
        def __init__(self, *_a, **_k) -> None:
            appels.append("worker")

        def execute_from_commandline(self) -> None:
            appels.append("run")

    monkeypatch.setattr(worker, "build", lambda _s: appels.append("build"))
    monkeypatch.setattr(worker.faust, "Worker", Worker)
    monkeypatch.setattr(gc_tuning, "regler", lambda: appels.append("regler"))
    monkeypatch.setattr(worker.event_loop, "choisir", lambda nom: appels.append(f"loop {nom}"))
    worker.run(SimpleNamespace(log_level="warning", log_format="text", event_loop="uvloop"))  # type: ignore[arg-type]
    # The loop is chosen before the worker makes its own (this process's policy stays as it is)
    assert appels == ["build", "regler", "loop uvloop", "worker", "run"]
