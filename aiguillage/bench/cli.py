"""The ``aiguillage bench`` command: run the contenders, print and optionally write the figures."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from aiguillage.broker import EmbeddedBroker
from aiguillage.kafka_local import LocalKafka

KINDS = ("limit", "peer", "floor", "hub")
# The targets of issue 22, in one run (on either broker). The limit is printed beside them, not a target.
TARGET_VS_PEER = 1.0  # the hub, doing all its work, at least as fast as a naive Faust copy agent
STRETCH_VS_FLOOR = 0.5  # ... and half as fast as the same copy with the hub's own Faust settings
TARGET_OWN_WORK_US = 60.0  # the hub's own work per signalement, without Kafka
TARGET_P99_VS_FLOOR = 2.0  # latency at the offered rate
FLAT_RSS_GROWTH = 0.10  # from 100,000 to 400,000 signalements


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b and not math.isnan(a) and not math.isnan(b) else None


def targets_rate(results: dict) -> float | None:
    """The hub rate the throughput target asks for in this run."""
    return TARGET_VS_PEER * results["peer"]["msgs_per_s"] if "peer" in results else None


def summary(results: dict, memory_check: bool, domaine: dict | None = None) -> dict:
    figures = {k: f.as_dict() for k, f in results.items()}
    out: dict = {"results": figures, "ratios": {}, "targets": {}}
    hub, lim, peer, floor = (results.get(k) for k in ("hub", "limit", "peer", "floor"))
    pairs = {"hub_limit_throughput": (hub, lim), "hub_peer_throughput": (hub, peer),
             "hub_floor_throughput": (hub, floor), "floor_limit_throughput": (floor, lim)}
    for key, (a, b) in pairs.items():
        if a and b:
            out["ratios"][key] = ratio(a.msgs_per_s, b.msgs_per_s)
    for key, (a, b) in {"hub_limit_p99": (hub, lim), "hub_floor_p99": (hub, floor)}.items():
        if a and b:
            out["ratios"][key] = ratio(a.p99_ms, b.p99_ms)
    r = out["ratios"]
    if "hub_peer_throughput" in r:
        out["targets"]["hub / peer throughput >= 1.0"] = (r["hub_peer_throughput"] or 0) >= TARGET_VS_PEER
    if "hub_floor_throughput" in r:
        out["targets"]["stretch: hub / floor throughput >= 0.5"] = (r["hub_floor_throughput"] or 0) >= STRETCH_VS_FLOOR
    if "hub_floor_p99" in r:
        out["targets"]["hub p99 <= 2 x floor p99"] = r["hub_floor_p99"] is not None and r["hub_floor_p99"] <= TARGET_P99_VS_FLOOR
    if domaine is not None:
        out["targets"]["own work <= 60 µs"] = domaine["us_per_msg"] <= TARGET_OWN_WORK_US
    if memory_check and hub and {100_000, 400_000} <= hub.rss_mb_at.keys():
        a, b = hub.rss_mb_at[100_000], hub.rss_mb_at[400_000]
        out["memory"] = {"hub_rss_mb_100k": round(a, 1), "hub_rss_mb_400k": round(b, 1),
                         "growth": round((b - a) / a, 3),
                         "hub_rss_mb_at": {n: round(v, 1) for n, v in sorted(hub.rss_mb_at.items())}}
        out["targets"]["memory flat from 100,000 to 400,000"] = (b - a) / a <= FLAT_RSS_GROWTH
    return out


DOMAINE_N = 20_000  # signalements through the hub's pure work: a few seconds, steady figures


def mesurer_domaine(count: int, run_id: str, progress: Callable[[str, int, int], None]) -> dict:
    """The hub's own work without Kafka (aiguillage.bench.domaine), on the run's signalements."""
    from aiguillage.bench.domaine import mesurer
    from aiguillage.bench.donnees import generer

    n, phase = min(count, DOMAINE_N), "hub: work without Kafka"
    progress(phase, 0, n)
    return mesurer(generer(n, run_id), lambda done: progress(phase, done, n))


def start_broker(broker: str, log_dir: Path) -> EmbeddedBroker | LocalKafka | None:
    """A fresh broker for the run (embedded, or a local Apache Kafka node), or None for a URL."""
    if broker == "embedded":
        return EmbeddedBroker(log_file=log_dir / "tansu.log").start()
    if broker == "kafka":
        return LocalKafka(log_dir / "kafka", heap_mb=1024).start()
    return None


def broker_process(started: EmbeddedBroker | LocalKafka | None) -> int | None:
    """The broker's pid, whose CPU the bench reports per message (None: not on this machine)."""
    if isinstance(started, EmbeddedBroker) and started.process:
        return started.process.pid
    if isinstance(started, LocalKafka):
        return next(iter(started.processes.values())).pid
    return None


def render(console: Console, out: dict, meta: dict) -> None:
    table = Table(title=f"aiguillage bench: {meta['count']:,} signalements, latency at {meta['rate']}/s, "
                  f"hub tables {meta['store']}, "
                  f"load average {meta['loadavg_before'][0]:.2f} → {meta['loadavg_after'][0]:.2f}")
    table.add_column("contender")
    for col in ("msgs/s", "p50 ms", "p99 ms", "peak RSS MB", "CPU µs/msg", "broker CPU µs/msg", "start + join s"):
        table.add_column(col, justify="right")
    for name, f in out["results"].items():
        table.add_row(name, f"{f['msgs_per_s']:,.0f}", f"{f['p50_ms']:.1f}", f"{f['p99_ms']:.1f}",
                      f"{f['peak_rss_mb']:.0f}", f"{f['cpu_us_per_msg']:.0f}",
                      "-" if f["broker_cpu_us_per_msg"] is None else f"{f['broker_cpu_us_per_msg']:.0f}",
                      f"{f['ready_s']:.1f}")
    console.print(table)
    labels = {"hub_limit_throughput": "hub / limit throughput", "hub_peer_throughput": "hub / peer throughput",
              "hub_limit_p99": "hub / limit p99", "floor_limit_throughput": "floor / limit throughput",
              "hub_floor_p99": "hub / floor p99", "hub_floor_throughput": "hub / floor throughput"}
    for name, f in out["results"].items():
        if f.get("stages_ms"):
            console.print(f"{name} latency by stage, p50 / p99 ms: " + "; ".join(
                f"{label} {p50:.0f} / {p99:.0f}" for label, (p50, p99) in f["stages_ms"].items()))
    for key, value in out["ratios"].items():
        console.print(f"{labels[key]}: {value if value is not None else 'n/a'}")
    if "domain" in out:
        d, needed = out["domain"], targets_rate(out["results"])
        etapes = ", ".join(f"{k} {v:.0f}" for k, v in d["stages_us"].items())
        demande = f"; the targets ask for {needed:,.0f}/s" if needed else ""
        console.print(f"hub's own work without Kafka ({d['count']:,} signalements): {d['us_per_msg']:.0f} µs per "
                      f"signalement ({etapes}): at most {d['max_per_s_one_core']:,}/s on one core{demande}",
                      soft_wrap=True)  # one line, even piped: scripts grep it
    if (hub := out["results"].get("hub")) and hub.get("restart_s") is not None:
        console.print(f"hub restart after draining {hub['count']:,} signalements (tables {meta['store']}), caught up "
                      f"{hub['catch_up_s']:.1f} s after its last Affectation: "
                      f"{hub['restart_s']:.1f} s from its start to its first new output; rebuilt beside its "
                      "batches, " + ", ".join(f"its {k} {'after ' + format(v, '.1f') + ' s' if v is not None else 'not yet'}"
                                              for k, v in hub.get("rebuilds_s", {}).items()), soft_wrap=True)
    if (hub := out["results"].get("hub")) and hub.get("records_per_msg"):
        v = hub["records_per_msg"]
        console.print(f"hub records written per signalement of the drain: {sum(v.values()):.2f} ("
                      + ", ".join(f"{t} {x:.2f}" for t, x in v.items()) + ")", soft_wrap=True)
    if "memory" in out:
        m = out["memory"]
        console.print(f"hub RSS after 100,000: {m['hub_rss_mb_100k']} MB, after 400,000: "
                      f"{m['hub_rss_mb_400k']} MB ({m['growth']:+.1%}); at each 100,000: "
                      + ", ".join(f"{v:,.0f}" for v in m["hub_rss_mb_at"].values()) + " MB")
    for name, f in out["results"].items():
        if f.get("profile"):
            render_profile(console, name, f["profile"])
    if out["targets"]:
        console.print("targets (issue 22): " + "; ".join(f"{k}: {'met' if v else 'NOT met'}"
                                                         for k, v in out["targets"].items()), soft_wrap=True)


def render_profile(console: Console, name: str, p: dict) -> None:
    def parts(d: dict) -> str:
        return "; ".join(f"{k} {v:.1f}" for k, v in d.items())

    console.print(f"{name} profile (py-spy, {p['samples']:,} samples over the drain), % of samples:", soft_wrap=True)
    console.print(f"  by layer of the running frame: {parts(p['layers_pct'])}", soft_wrap=True)
    console.print(f"  by agent or timer, with what it calls: {parts(p['tasks_pct'])}", soft_wrap=True)
    console.print(f"  frames that ran most: {parts(p['top_self_pct'])}", soft_wrap=True)


def bench(
    count: int = typer.Option(200_000, help="Signalements in the backlog each contender drains (throughput)."),
    rate: int = typer.Option(500, help="Offered rate, signalements/s, of the latency phase."),
    duration: float = typer.Option(10.0, help="Seconds of the latency phase."),
    broker: str = typer.Option(
        "embedded", help="embedded: a fresh embedded broker (Tansu); kafka: a fresh local Apache Kafka node "
        "from its jars (aiguillage kafka up); or kafka://host:9092 of an existing Apache Kafka."),
    partitions: int = typer.Option(4, help="Partitions of the bench's fresh topics."),
    only: Annotated[list[str] | None, typer.Option(help="Run only this contender (repeatable): limit, peer, floor, hub.")] = None,
    memory_check: bool = typer.Option(False, "--memory-check",
                                      help="Drain at least 400,000 and compare the hub's RSS at 100,000 and 400,000 "
                                      "(tables on disk unless --store or AIGUILLAGE_STORE says otherwise)."),
    store: str = typer.Option(None, help="Where the hub keeps its tables: memory:// or rocksdb:// "
                              "(on disk, with the waiting files: memory stays flat as signalements accumulate); "
                              "default: AIGUILLAGE_STORE, else memory:// (rocksdb:// with --memory-check)."),
    json_path: str = typer.Option(None, "--json", help="Also write the figures as JSON to this file ('-': stdout)."),
    profile: bool = typer.Option(False, "--profile",
                                 help="Sample the hub with py-spy while it drains its backlog and print where its "
                                 "CPU goes: by layer, by frame, by agent (needs py-spy: the bench extra). "
                                 "py-spy's own CPU shares the machine: compare rates of runs without it."),
) -> None:
    """Measure the hub against the limit (a raw aiokafka copy loop), a peer (a naive Faust copy agent)
    and the floor (the same copy with the hub's own Faust settings and batches: what Faust itself
    costs): messages/s on a backlog, end-to-end latency p50/p99 at a fixed offered rate, peak resident
    memory, and the ratios hub / limit, hub / peer, hub / floor and floor / limit. Each contender
    runs in its own process on fresh topics. Last, the hub's own work per signalement without
    Kafka, in this process: the rate no transport can take the hub past on one core.

    Example:  aiguillage bench --count 200000 --rate 500 --json bench.json
    """
    from aiguillage.bench import profil
    from aiguillage.bench.run import BenchError, Options, run
    from aiguillage.config import STORES
    from aiguillage.kafka_local import KafkaJarsError, LocalKafkaError

    err = Console(stderr=True)
    only = only or list(KINDS)
    if bad := [k for k in only if k not in KINDS]:
        err.print(f"[bold red]error:[/] unknown contender(s) {bad}; expected {list(KINDS)}")
        raise typer.Exit(2)
    # In memory, the tables themselves grow with the open signalements: the memory check is of the
    # deployed configuration (the compose stack's workers run with rocksdb://).
    store = store or os.environ.get("AIGUILLAGE_STORE") or ("rocksdb://" if memory_check else "memory://")
    if store not in STORES:
        err.print(f"[bold red]error:[/] --store {store!r}: expected {' or '.join(STORES)}")
        raise typer.Exit(2)
    if memory_check:
        count = max(count, 400_000)
    if broker not in ("embedded", "kafka") and not broker.startswith("kafka://"):
        err.print(f"[bold red]error:[/] --broker {broker!r}: expected embedded, kafka or kafka://host:port")
        raise typer.Exit(2)
    if profile:
        if "hub" not in only:
            err.print("[bold red]error:[/] --profile samples the hub: add --only hub, or leave --only out")
            raise typer.Exit(2)
        try:
            profil.executable()
        except profil.ProfilIndisponible as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None
    log_dir = Path(tempfile.mkdtemp(prefix="aiguillage-bench-"))
    try:
        started = start_broker(broker, log_dir)
    except (KafkaJarsError, LocalKafkaError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    bootstrap = started.bootstrap if started else ",".join(p.split("://", 1)[-1] for p in broker.split(","))
    broker_pid = broker_process(started)
    opts = Options(bootstrap, count, rate, duration, partitions, log_dir, broker_pid, store,
                   embedded=broker == "embedded", profile=profile)
    meta = {"count": count, "rate": rate, "duration": duration, "partitions": partitions, "store": store,
            "broker": broker, "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(),
            "logs": str(log_dir)}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=False) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done)

            results = asyncio.run(run([k for k in KINDS if k in only], opts, progress))
            domaine = mesurer_domaine(count, opts.run_id, progress) if "hub" in only else None
    except (BenchError, profil.ProfilIndisponible) as exc:
        err.print(f"[bold red]bench failed:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        if started:
            started.stop()
    meta["loadavg_after"] = os.getloadavg()
    out = {**meta, **summary(results, memory_check, domaine)}
    if domaine is not None:
        out["domain"] = domaine
    to_stderr = json_path == "-"
    stream = sys.stderr if to_stderr else sys.stdout
    # Piped into a file or a script: wide enough for the whole table, never wrapped.
    render(Console(stderr=to_stderr, width=None if stream.isatty() else 140), out, meta)
    if json_path == "-":
        typer.echo(json.dumps(out, indent=2))
    elif json_path:
        Path(json_path).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
