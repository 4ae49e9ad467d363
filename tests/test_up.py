"""``aiguillage up`` a person can trust, on its embedded broker, as a real process tree:
a 202 survives the SIGKILL of any process, of the broker and of ``up`` itself; a restart and a
resend change nothing; a stop leaves nothing running; a process that keeps dying is given up on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.conftest import ROOT
from tests.up_util import Up, alive, descendants, lot_service_medical, rows, wait_rows

pytestmark = pytest.mark.embedded
BATCHES, ROWS = 20, 100  # 2,000 signalements, as a partner's extracts


@pytest.fixture
def up(tmp_path):
    started: list[Up] = []

    def make(**env: str) -> Up:
        started.append(Up(tmp_path / "var", env=env))
        return started[-1]

    yield make
    for u in started:
        if u.proc is not None and u.proc.poll() is None:
            u.stop(signal.SIGKILL)
    tree = set().union(*(u.look() if u.proc else set() for u in started))
    deadline = time.monotonic() + 20  # SIGTERM from the kernel when up died: they stop as on any SIGTERM
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(tree), f"processes of the tree still run: {alive(tree)}"


def _stream(hub: Up, prefix: str, crash_after: int, crash) -> set[str]:
    accepted: set[str] = set()
    for i in range(BATCHES):
        accepted |= set(hub.post(lot_service_medical(prefix, i * ROWS, ROWS)))
        if i == crash_after:
            crash()
    return accepted


@pytest.mark.parametrize("victim", ["worker", "sink-affectations", "broker"])
def test_a_process_killed_mid_stream_loses_no_acknowledged_signalement(up, victim):
    hub = up().start()
    pid = hub.child(victim)
    accepted = _stream(hub, f"KILL-{victim}-{uuid.uuid4().hex[:6]}", 5, lambda: os.kill(pid, signal.SIGKILL))
    assert len(accepted) == BATCHES * ROWS
    found = wait_rows(hub, accepted)
    assert len(found) == len(accepted)  # one row each: the table is keyed by signalement_id
    assert pid not in alive([pid]) and hub.child(victim) != pid, "the victim was started again"
    assert hub.stop() == 0, hub.logs()


def test_up_itself_killed_then_a_new_up_on_the_same_data_delivers_every_acknowledged_signalement(up):
    first = up().start()
    accepted = _stream(first, f"KILLUP-{uuid.uuid4().hex[:6]}", 9, lambda: None)
    first.stop(signal.SIGKILL, timeout=10)
    deadline = time.monotonic() + 15
    while alive(first.look()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(first.tree), "the old tree outlived its up"
    second = up().start()
    found = wait_rows(second, accepted)
    assert len(found) == len(accepted)
    assert second.stop() == 0, second.logs()


def test_a_restart_and_a_resend_leave_every_row_as_it_was(up):
    first = up().start()
    prefix = f"RESEND-{uuid.uuid4().hex[:6]}"
    batches = [lot_service_medical(prefix, i * ROWS, ROWS) for i in range(5)]
    accepted = set().union(*(first.post(b) for b in batches))
    before = wait_rows(first, accepted)
    files_before = httpx.get(f"{first.base}/v1/files", headers=first.entete(), timeout=30).json()
    assert files_before, "the responsable's token of up's banner reads the files"
    assert first.stop() == 0, first.logs()

    second = up().start()
    resent = set().union(*(second.post(b) for b in batches))
    assert resent == accepted  # a resend is the same signalement
    time.sleep(8)  # time for the worker to see them all again (it drops them: seen before)
    after = rows(second.data, accepted)
    keep = ("file", "assistant", "regle", "sequence", "decide_le")
    assert {i: {k: r[k] for k in keep} for i, r in after.items()} == {i: {k: r[k] for k in keep} for i, r in before.items()}
    assert httpx.get(f"{second.base}/v1/files", headers=second.entete(), timeout=30).json() == files_before
    assert second.stop() == 0, second.logs()


def test_up_gives_up_on_a_process_that_keeps_dying_and_names_it(up, tmp_path):
    # The worker's tables directory is a file: the worker dies at each start, the gateway does not
    # (a broken routing file would stop both: the gateway maps teams to territories for staff rights).
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "tables").write_text("not a directory\n")
    hub = up().start()
    assert hub.proc is not None
    status = hub.proc.wait(180)
    banner = hub.banner.read_text()
    assert status == 1, banner[-2000:]
    assert "worker died 5 times in a row" in banner and "worker.log" in banner
    assert "starting it again in" in banner


def test_while_it_stops_the_gateway_answers_503_with_retry_after(hub_factory, sqlite_url, exemple_cpam, jetons):
    hub = hub_factory(sqlite_url, components=("gateway",))
    hub.hub.processes["gateway"].send_signal(signal.SIGUSR1)  # what `up` sends when it stops
    time.sleep(0.5)
    resp = httpx.post(f"{hub.base_url}/v1/signalements/cpam", json=exemple_cpam, headers=jetons.entete("cpam"),
                      timeout=10)
    assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit()
    assert resp.json()["error"] == "arret-en-cours"
    assert httpx.get(f"{hub.base_url}/healthz", timeout=10).status_code == 200  # reads still answer


def test_a_closed_terminal_and_a_dead_output_pipe_stop_up_cleanly_leaving_nothing(tmp_path):
    """Its banner goes to a pipe that the reader closes (a `| head` that ended), then the terminal
    hangs up (SIGHUP): up goes on without its output, then stops as on Ctrl-C."""
    port = Up(tmp_path / "var").port
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGUILLAGE_")}
    proc = subprocess.Popen([sys.executable, "-m", "aiguillage", "up", "--port", str(port), "--data-dir",
                             str(tmp_path / "var")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    seen = b""
    while b"Aiguillage is up" not in seen:
        chunk = proc.stdout.read1(4096)
        assert chunk, seen.decode(errors="replace")
        seen += chunk
    tree = descendants(proc.pid)
    proc.stdout.close()  # the pipe dies
    time.sleep(1)
    assert proc.poll() is None, "up died with its output"
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(120) == 0
    deadline = time.monotonic() + 20
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(tree), alive(tree)
