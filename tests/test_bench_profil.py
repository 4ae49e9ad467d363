"""`aiguillage bench --profile`: py-spy's stacks, summarised by layer, by frame and by agent."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from aiguillage.bench import profil

MAIN = "<module> (aiguillage/bench/contenders.py:9)"


def pile(n: int, *frames: str) -> str:
    return ";".join((MAIN, *frames)) + f" {n}"


STACKS = [
    # root first, as py-spy writes them ("frame;frame;... count"), its paths short by default...
    pile(30, "_run_once (asyncio/base_events.py:19)", "install.<locals>.routage_agent (streams/ingress.py:105)",
             "Routeur.decoder (streams/ingress.py:42)", "AvroCodec.decode (aiguillage/codec.py:140)"),
    # ... and whole with --full-filenames
    pile(10, "install.<locals>.routage_agent (/srv/streams/ingress.py:105)",
             "BaseModel.model_validate (/v/lib/python3.11/site-packages/pydantic/main.py:5)"),
    pile(20, "install.<locals>.equipes_agent (/v/site-packages/streams/teams.py:200)",
             "Topic.send_soon (/v/lib/python3.11/site-packages/faust/topics.py:3)"),
    pile(25, "Fetcher._fetcher (/v/site-packages/aiokafka/consumer/fetcher.py:7)"),
    pile(15, "select (/usr/lib/python3.11/selectors.py:468)"),
    "not a stack line",
]


def test_the_summary_splits_samples_by_layer_frame_and_agent():
    p = profil.resumer(STACKS)
    assert p["samples"] == 100
    assert p["layers_pct"] == {"hub": 30.0, "aiokafka": 25.0, "faust": 20.0, "event loop": 15.0, "pydantic": 10.0}
    assert next(iter(p["top_self_pct"].items())) == ("AvroCodec.decode (aiguillage/codec.py)", 30.0)
    # an agent counts what it calls, wherever that runs; the fetcher is nobody's agent
    assert p["tasks_pct"] == {"routage_agent (streams/ingress.py)": 40.0, "equipes_agent (streams/teams.py)": 20.0}


def test_an_empty_recording_is_zero_samples_not_a_division_by_zero():
    assert profil.resumer([]) == {"samples": 0, "layers_pct": {}, "top_self_pct": {}, "tasks_pct": {}}


def test_py_spy_records_a_live_process_until_stopped(tmp_path):
    """The real py-spy on a real process: what is busy shows as the frame that ran most."""
    script = tmp_path / "occupe.py"
    script.write_text(textwrap.dedent("""
        import sys
        def tourner():
            n = 0
            while True:
                n += 1
        print("ready", flush=True)
        tourner()
    """))
    busy = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert busy.stdout is not None and busy.stdout.readline().strip() == "ready"
        spy = profil.Enregistrement(busy.pid, tmp_path / "profile.txt", tmp_path / "py-spy.log")
        subprocess.run([sys.executable, "-c", "import time; time.sleep(1.5)"], check=True)
        p = spy.arreter()
    finally:
        busy.kill()
        busy.wait()
    assert p["samples"] > 20, (tmp_path / "py-spy.log").read_text()
    assert next(iter(p["top_self_pct"])) == "tourner (occupe.py)"
