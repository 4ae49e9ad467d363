"""deploy/: the Prometheus scrape configuration, the alert rules and the Grafana dashboard are
valid and built on metrics the hub exports (aiguillage/metrics.py), with labels it sets."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from aiguillage import metrics

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "aiguillage.json"
NAME = re.compile(r"\b(aiguillage_[a-z_]+)\b")
SELECTOR = re.compile(r"\b(aiguillage_[a-z_]+)\{([^}]*)\}")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
SCRAPE_LABELS = {"instance", "job"}


def exported() -> dict[str, set[str]]:
    """Each series name the hub exports, with its label names."""
    names: dict[str, set[str]] = {}
    for m in vars(metrics).values():
        if isinstance(m, Counter):
            names[f"{m._name}_total"] = set(m._labelnames)
        elif isinstance(m, Histogram):
            for suffix in ("_bucket", "_count", "_sum"):
                names[m._name + suffix] = set(m._labelnames) | ({"le"} if suffix == "_bucket" else set())
        elif isinstance(m, Gauge):
            names[m._name] = set(m._labelnames)
    return names


def rule_expressions() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "alertes.yml").read_text(encoding="utf-8"))
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def dashboard_expressions() -> list[str]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def check(expr: str, known: dict[str, set[str]]) -> None:
    used = NAME.findall(expr)
    assert used or "up{" in expr, f"no hub metric in {expr!r}"
    for name in used:
        assert name in known, f"{name} (in {expr!r}) is not exported by aiguillage/metrics.py"
    labels = set().union(*(known[n] for n in used)) | SCRAPE_LABELS if used else SCRAPE_LABELS
    for name, matchers in SELECTOR.findall(expr):
        for label in re.findall(r"([a-z_]+)\s*=~?", matchers):
            assert label in known[name] | SCRAPE_LABELS, f"{name} has no label {label!r}: {expr!r}"
    for group in GROUPING.findall(expr):
        for label in filter(None, (x.strip() for x in group.split(","))):
            assert label in labels, f"no metric of {expr!r} has the label {label!r}"


def test_every_alert_uses_metrics_the_hub_exports():
    rules = yaml.safe_load((PROMETHEUS / "alertes.yml").read_text(encoding="utf-8"))
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    # What the issue asks the rules to cover: lag, dead letters, deadlines, sink retries.
    assert {"AiguillageLagCroissant", "AiguillageLettresMortes", "AiguillageEcheancesDepassees",
            "AiguillageSinkEnReessai"} <= alerts
    for g in rules["groups"]:
        for r in g["rules"]:
            assert r["labels"]["severity"] in {"warning", "critical"} and r["annotations"]["summary"], r["alert"]
    for expr in rule_expressions():
        check(expr, exported())


def test_the_dashboard_loads_and_every_metric_it_uses_exists():
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dash["uid"] == "aiguillage" and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    sources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = sources["datasources"][0]["uid"]
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == uid and p["targets"], p["title"]
    exprs = dashboard_expressions()
    for expr in exprs:
        check(expr, exported())
    used = {n for e in exprs for n in NAME.findall(e)}
    for family in ("aiguillage_signalements_acceptes_total", "aiguillage_dlq_total", "aiguillage_consumer_lag",
                   "aiguillage_latence_affectation_secondes_bucket", "aiguillage_sink_reessais_total",
                   "aiguillage_http_duree_secondes_bucket", "aiguillage_decisions_total"):
        assert family in used, f"the dashboard shows nothing of {family}"


def test_the_checker_catches_a_metric_that_does_not_exist():
    with pytest.raises(AssertionError, match="not exported"):
        check("rate(aiguillage_signalements_perdus_total[5m])", exported())
    with pytest.raises(AssertionError, match="no label"):
        check('aiguillage_dlq_total{canal="http"}', exported())


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (.ci/run installs Debian's prometheus)")
@pytest.mark.parametrize("args", [["check", "config", "prometheus.yml"], ["check", "rules", "alertes.yml"],
                                  ["test", "rules", "alertes_test.yml"]], ids=" ".join)
def test_promtool(args):
    done = subprocess.run([PROMTOOL, *args], check=False, cwd=PROMETHEUS, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
