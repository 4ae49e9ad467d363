"""``aiguillage bench`` runs end to end on a small count and reports well-formed figures.

No timing assertion: the figures depend on the machine; only their shape is checked.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from aiguillage.bench.domaine import ETAPES
from tests.conftest import ROOT

KINDS = ("limit", "peer", "floor", "hub")


@pytest.mark.parametrize("broker", [pytest.param("embedded", marks=pytest.mark.embedded),
                                    pytest.param("kafka", marks=pytest.mark.kafka)])
def test_bench_prints_figures_for_limit_peer_floor_and_hub_and_writes_valid_json(broker, tmp_path):
    """On a fresh broker of each kind, as `aiguillage bench --broker embedded|kafka` starts it; on the
    embedded one, with py-spy's profile of the hub."""
    out = tmp_path / "bench.json"
    profile = ["--profile"] if broker == "embedded" else []
    proc = subprocess.run(
        [sys.executable, "-m", "aiguillage", "bench", "--count", "2000", "--rate", "500",
         "--duration", "2", "--broker", broker, "--json", str(out), *profile],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for kind in KINDS:
        row = re.search(rf"^│ {kind}\s*│(.+)│$", proc.stdout, re.MULTILINE)
        assert row, f"no row for {kind} in:\n{proc.stdout}"
        cells = [c.strip() for c in row.group(1).split("│")]
        assert all(re.fullmatch(r"[\d,.]+|-", c) for c in cells), cells
    assert re.search(r"hub / limit throughput: \d+\.\d+", proc.stdout)
    assert re.search(r"hub / peer throughput: \d+\.\d+", proc.stdout)
    assert re.search(r"hub / limit p99: \d+\.\d+", proc.stdout)
    assert re.search(r"hub / floor throughput: \d+\.\d+", proc.stdout)
    assert re.search(r"floor / limit throughput: \d+\.\d+", proc.stdout)
    assert re.search(r"hub's own work without Kafka \(2,000 signalements\): \d+ µs per signalement "
                     r"\(decode and validate \d+, .*\): at most [\d,]+/s on one core; the targets ask for [\d,]+/s",
                     proc.stdout)
    assert re.search(r"hub restart after draining 2,000 signalements \(tables memory://\), caught up \d+\.\d s "
                     r"after its last Affectation: \d+\.\d s from its start to its first new output; rebuilt beside its "
                     r"batches, its waiting files after \d+\.\d s, its figures after \d+\.\d s", proc.stdout)
    assert re.search(r"targets \(issue 22\): hub / peer throughput >= 1\.0: (met|NOT met); stretch: hub / floor "
                     r"throughput >= 0\.5: (met|NOT met); hub p99 <= 2 x floor p99: (met|NOT met); "
                     r"own work <= 60 µs: (met|NOT met)", proc.stdout)
    assert re.search(r"hub latency by stage, p50 / p99 ms: to the routing decision \d+ / \d+; "
                     r"to the Affectation sent \d+ / \d+; to the bench's read \d+ / \d+", proc.stdout)

    if profile:
        assert re.search(r"hub profile \(py-spy, [\d,]+ samples over the drain\), % of samples:\n"
                         r"  by layer of the running frame: (.+; )?hub \d+\.\d.*\n"
                         r"  by agent or timer, with what it calls: .*routage_agent \(streams/ingress.py\) \d+\.\d.*\n"
                         r"  frames that ran most: .+", proc.stdout), proc.stdout

    figures = json.loads(out.read_text())
    assert figures["count"] == 2000 and figures["rate"] == 500 and figures["store"] == "memory://"
    assert figures["broker"] == broker
    for kind in KINDS:
        f = figures["results"][kind]
        assert f["count"] == 2000
        for key in ("msgs_per_s", "p50_ms", "p99_ms", "peak_rss_mb", "ready_s", "cpu_us_per_msg"):
            assert isinstance(f[key], float) and math.isfinite(f[key]) and f[key] > 0, (kind, key, f[key])
        assert f["p50_ms"] <= f["p99_ms"]
    # Where the hub's latency goes: three stages whose p50s add up to about its end-to-end p50
    # (each stage's own p50, so not exactly; and a clock read apart from the end-to-end one).
    stages = figures["results"]["hub"]["stages_ms"]
    assert len(stages) == 3 and all(0 <= p50 <= p99 for p50, p99 in stages.values()), stages
    assert sum(p50 for p50, _ in stages.values()) <= 2 * figures["results"]["hub"]["p50_ms"] + 5
    assert all(figures["results"][k]["stages_ms"] == {} for k in ("limit", "peer", "floor"))
    assert figures["results"]["hub"]["restart_s"] > 0
    rebuilds = figures["results"]["hub"]["rebuilds_s"]
    assert set(rebuilds) == {"waiting files", "figures"} and all(v is not None and 0 < v < 300 for v in rebuilds.values()), rebuilds
    assert 0 <= figures["results"]["hub"]["catch_up_s"] < 600  # caught up: no timeout
    assert all(figures["results"][k]["restart_s"] is None for k in ("limit", "peer", "floor"))
    if profile:  # what the hub's agents ran is sampled: routing and the teams, at least
        p = figures["results"]["hub"]["profile"]
        assert p["samples"] > 0 and {"routage_agent (streams/ingress.py)", "equipes_agent (streams/teams.py)"} <= set(p["tasks_pct"])
        assert math.isclose(sum(p["layers_pct"].values()), 100, abs_tol=1)
    assert all(figures["results"][k]["profile"] is None for k in ("limit", "peer", "floor"))
    assert set(figures["targets"]) == {"hub / peer throughput >= 1.0", "stretch: hub / floor throughput >= 0.5",
                                       "hub p99 <= 2 x floor p99", "own work <= 60 µs"}
    assert set(figures["ratios"]) == {"hub_limit_throughput", "hub_peer_throughput", "hub_limit_p99",
                                      "hub_floor_throughput", "floor_limit_throughput", "hub_floor_p99"}
    assert all(v > 0 for v in figures["ratios"].values())
    assert len(figures["loadavg_before"]) == 3
    domaine = figures["domain"]
    assert domaine["count"] == 2000 and set(domaine["stages_us"]) == set(ETAPES)
    assert math.isclose(domaine["us_per_msg"], sum(domaine["stages_us"].values()), abs_tol=1)
    assert math.isclose(domaine["max_per_s_one_core"], 1e6 / domaine["us_per_msg"], rel_tol=0.01)


def test_bench_refuses_an_unknown_contender():
    proc = subprocess.run(
        [sys.executable, "-m", "aiguillage", "bench", "--only", "kafka-streams"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "unknown contender" in proc.stderr


def test_bench_refuses_an_unknown_store():
    proc = subprocess.run(
        [sys.executable, "-m", "aiguillage", "bench", "--only", "hub", "--store", "redis://"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "--store 'redis://'" in proc.stderr and "rocksdb://" in proc.stderr


def test_bench_refuses_a_profile_without_the_hub():
    proc = subprocess.run(
        [sys.executable, "-m", "aiguillage", "bench", "--only", "limit", "--profile"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "--profile samples the hub" in proc.stderr


def test_the_own_work_measure_decides_every_signalement_in_batches():
    """Without a broker: packets of PAQUET, a last partial one, every signalement an Affectation."""
    from aiguillage.bench.domaine import mesurer
    from aiguillage.bench.donnees import generer

    figures = mesurer(generer(250, "unit"), paquet=100)
    assert figures["count"] == 250 and figures["affectations"] == 250 and figures["refused"] == 0
    assert set(figures["stages_us"]) == set(ETAPES) and all(v > 0 for v in figures["stages_us"].values())
