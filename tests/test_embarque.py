"""The embedded mode of ``aiguillage up`` (Tansu): its default works, and its quirk's workaround holds.

The production path runs on Apache Kafka in the other end-to-end modules; this one proves what a
newcomer runs first.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from aiguillage import topics
from aiguillage.broker import free_port
from aiguillage.embedded.ends import true_ends
from aiguillage.runtime import wait_http
from tests.conftest import EXEMPLES, ROOT
from tests.pannes_util import produire
from tests.test_squelette_e2e import _post_and_find, _wait_row
from tests.up_util import alive, descendants

pytestmark = pytest.mark.embedded
TOKEN = re.compile(r"token\s+cpam\s+(\S+)")


def test_aiguillage_up_routes_the_readme_example_and_stops_leaving_nothing(tmp_path, exemple_cpam):
    port = free_port()
    banner = tmp_path / "up.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGUILLAGE_")}  # a newcomer's shell
    with banner.open("wb") as err:
        up = subprocess.Popen(
            [sys.executable, "-m", "aiguillage", "up", "--port", str(port), "--data-dir", str(tmp_path / "var")],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=90, proc=up)
        deadline = time.monotonic() + 30
        while not (match := TOKEN.search(banner.read_text())) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert match, banner.read_text()
        children = descendants(up.pid)
        assert len(children) >= 6, children  # broker, worker, gateway, four sinks
        resp = httpx.post(
            f"http://127.0.0.1:{port}/v1/signalements/cpam", content=(EXEMPLES / "cpam.json").read_bytes(),
            headers={"Authorization": f"Bearer {match.group(1)}", "Content-Type": "application/json"}, timeout=15,
        )
        assert resp.status_code == 202, resp.text
        sid = resp.json()["signalement_id"]
        row = _wait_row(f"sqlite:///{tmp_path / 'var' / 'aiguillage.db'}", sid, timeout=90)
        assert (row["file"], row["regle"]) == ("31-toulouse-SPS", "retard-ij")
        # The README's other commands, from the directory `up` runs in, with nothing exported.
        for command, expected in (
            (["ingest", "service-medical", str(EXEMPLES / "service-medical.csv")], "publi"),
            (["dlq", "list"], ""),
            (["routing", "explain", str(EXEMPLES / "cpam.json")], "31-toulouse-SPS"),
            (["demo", "--jours", "2", "--annee-en-minutes", "0"], "demo done"),
        ):
            proc = subprocess.run([sys.executable, "-m", "aiguillage", *command], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=120, check=False)
            assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
            assert expected in proc.stdout + proc.stderr, (command, proc.stdout, proc.stderr)
    finally:
        up.send_signal(signal.SIGINT)  # Ctrl-C
        status = up.wait(60)
    assert status == 0, banner.read_text()[-3000:]
    assert not alive(children), "processes of the old tree still run"


def test_the_hub_processes_route_on_the_embedded_broker(hub_factory, sqlite_url, exemple_cpam, jetons, emetteur):
    exemple_cpam["reference"] = "CPAM31-EMBARQUE-1"
    _post_and_find(hub_factory(sqlite_url), exemple_cpam, jetons, emetteur)


def test_on_the_embedded_broker_changelogs_are_read_to_their_true_end(embedded):
    """Tansu's ListOffsets announces the base offset of the last batch + 1; Faust's recovery
    would stop there. ``streams.faust_patches`` (installed by the worker on the embedded broker only)
    reads the true end."""
    produire(embedded.bootstrap, [(topics.REJETES, b"k", b"v", 1) for _ in range(50)])  # one batch

    async def fins() -> tuple[int, int]:
        tp = TopicPartition(topics.REJETES, 1)
        consumer = AIOKafkaConsumer(bootstrap_servers=embedded.bootstrap)
        await consumer.start()
        try:
            annoncee = (await consumer.end_offsets([tp]))[tp]
        finally:
            await consumer.stop()
        return annoncee, (await true_ends(embedded.bootstrap, {tp: annoncee}))[tp]

    annoncee, vraie = asyncio.run(fins())
    assert vraie == annoncee + 49, "ListOffsets is right now: streams/faust_patches.py can go"
