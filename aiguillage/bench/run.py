"""One bench run: for each contender, fresh topics, a warm-up, a paced stream, then a backlog.

Start-up: from the process start to the first output of a trickle of warm-up records,
which includes the consumer-group join; reported apart (``ready_s``), out of the rates.
Latency: ``rate`` Signalements/s for ``duration`` seconds; each one's latency is the time
from the bench's send to its arrival on the output topic, on one clock.
Throughput: a backlog of ``count`` Signalements, written while the contender is frozen;
the rate is counted from the moment it resumes to its last output (from its first output,
a small backlog fetched in one go would give an absurd rate), and the CPU time
it (and the embedded broker) spent meanwhile is divided by ``count``.
Stages (the hub only): where a paced signalement's latency goes, on the wall clock of this
machine: to its routing decision (the Affectation's ``decide_le``, stamped by the routing agent),
to the team agent's send of the Affectation (the record's timestamp), to the bench's read.
Memory: the contender's resident set (``VmRSS``) at every 100,000 backlog outputs, and its
peak (``VmHWM``), read from ``/proc``.
Profile (``--profile``): py-spy samples the hub from its resumption to its last output.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from aiguillage.bench import contenders, profil, rattrapage
from aiguillage.bench.donnees import Enregistrement, generer
from aiguillage.codec import AvroCodec

CHECKPOINT = 100_000
Progress = Callable[[str, int, int], None]  # (phase, done, total)


class BenchError(RuntimeError):
    pass


@dataclass
class Figures:
    name: str
    count: int
    msgs_per_s: float
    ready_s: float
    p50_ms: float
    p99_ms: float
    peak_rss_mb: float
    cpu_us_per_msg: float  # the contender's CPU time per record while draining: robust to a busy machine
    broker_cpu_us_per_msg: float | None = None
    rss_mb_at: dict[int, float] = field(default_factory=dict)
    restart_s: float | None = None  # the hub: stopped after the drain, started again on its state, to its first output
    catch_up_s: float | None = None  # the hub, after its last output: until its group had read all it reads
    records_per_msg: dict[str, float] = field(default_factory=dict)  # the hub: written per signalement, by topic
    stages_ms: dict[str, list[float]] = field(default_factory=dict)  # stage -> [p50, p99] (the hub)
    profile: dict | None = None  # the hub's py-spy profile over its drain (--profile): profil.resumer
    rebuilds_s: dict[str, float | None] = field(default_factory=dict)  # the hub's restart: to each rebuild's end

    def as_dict(self) -> dict:
        d = asdict(self)
        d["rss_mb_at"] = {str(k): v for k, v in self.rss_mb_at.items()}
        return d


@dataclass
class Options:
    bootstrap: str
    count: int
    rate: int
    duration: float
    partitions: int
    log_dir: Path
    broker_pid: int | None = None
    store: str = "memory://"  # the hub's tables (AIGUILLAGE_STORE)
    embedded: bool = True  # the embedded broker: the contenders get its workarounds (broker_profile)
    profile: bool = False  # py-spy samples the hub while it drains (aiguillage/bench/profil.py)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])


def _proc_kb(pid: int, field_name: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def create_fresh_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="aiguillage-bench")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def preload(bootstrap: str, topic: str, records: list[Enregistrement], progress: Progress) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks="all")
    await producer.start()
    try:
        acks = []
        for i, (key, value, _) in enumerate(records, 1):
            acks.append(await producer.send(topic, value, key=key))
            if i % 10_000 == 0 or i == len(records):
                await asyncio.gather(*acks)
                acks.clear()
                progress("préchargement", i, len(records))
    finally:
        await producer.stop()


class OutputWatcher:
    """Reads the output topic from its beginning (no group: nothing to join), counting and timing."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.count = 0
        self.first_at: float | None = None
        self.sent_at: dict[bytes, float] = {}  # latency phase: key -> send time
        self.sent_wall: dict[bytes, float] = {}  # and the same on the wall clock, for the stages
        self.latencies: list[float] = []
        self.decide_le: Callable[[bytes], float] | None = None  # an output's routing decision time (hub)
        self.stages: list[tuple[float, float, float, float]] = []  # (sent, decided, output sent, read)
        self.on_count: Callable[[int], None] = lambda n: None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.assign(self.tps)
        await self.consumer.seek_to_beginning(*self.tps)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=50, max_records=10_000)
            now = time.perf_counter()
            for records in batch.values():
                if self.first_at is None:
                    self.first_at = now
                self.count += len(records)
                if self.sent_at:
                    for r in records:
                        sent = self.sent_at.pop(r.key, None)
                        if sent is not None:
                            self.latencies.append(now - sent)
                            self._stage(r)
            if batch:
                self.on_count(self.count)

    def _stage(self, r: ConsumerRecord) -> None:
        sent = self.sent_wall.pop(r.key, None)
        if self.decide_le is not None and sent is not None:
            self.stages.append((sent, self.decide_le(r.value), r.timestamp / 1000, time.time()))

    def stage_percentiles(self) -> dict[str, list[float]]:
        labels = ("to the routing decision", "to the Affectation sent", "to the bench's read")
        out = {}
        for i, label in enumerate(labels):
            values = sorted(s[i + 1] - s[i] for s in self.stages)
            out[label] = [round(percentile(values, q) * 1000, 1) for q in (0.50, 0.99)]
        return out if self.stages else {}

    async def wait_for(self, n: int, timeout: float, alive: Callable[[], None]) -> float:
        deadline = time.monotonic() + timeout
        while self.count < n:
            alive()
            if time.monotonic() > deadline:
                raise BenchError(f"only {self.count} of {n} outputs within {timeout:.0f} s")
            await asyncio.sleep(0.01)
        return time.perf_counter()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()


async def offer(bootstrap: str, topic: str, records: list[Enregistrement], rate: int,
                watcher: OutputWatcher, progress: Progress) -> None:
    """Send at a fixed rate, noting each record's send time under the keys its output may carry:
    a copy keeps the assuré's key, an Affectation is keyed by signalement_id."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()
    try:
        t0 = time.perf_counter()
        acks = []
        for i, (key, value, sid) in enumerate(records):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            watcher.sent_at[key] = watcher.sent_at[sid] = now
            watcher.sent_wall[sid] = time.time()
            acks.append(await producer.send(topic, value, key=key))
            if i % rate == 0:
                progress("latence", i, len(records))
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


def spawn(kind: str, opts: Options, prefix: str, group: str, log_name: str | None = None) -> subprocess.Popen[bytes]:
    # The child imports the same code as this process (a worktree shadows the installed one).
    root = str(Path(contenders.__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "AIGUILLAGE_DLQ_KEY": secrets.token_hex(32),
           "AIGUILLAGE_PARTITIONS": str(opts.partitions), "AIGUILLAGE_DATA_DIR": str(data_dir(opts, kind)),
           "AIGUILLAGE_STORE": opts.store, "AIGUILLAGE_EMBEDDED_BROKER": "1" if opts.embedded else "0"}
    with open(opts.log_dir / (log_name or f"{kind}.log"), "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "aiguillage.bench.contenders", kind,
             "--bootstrap", opts.bootstrap, "--prefix", prefix, "--group", group],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=opts.log_dir,  # what a contender writes in its directory (the peer's Faust data) stays there
        )


def data_dir(opts: Options, kind: str) -> Path:
    """The contender's own state (RocksDB tables with AIGUILLAGE_STORE=rocksdb://), removed after its run."""
    return opts.log_dir / f"{kind}-data"


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def warm_up(bootstrap: str, topic: str, records: list[Enregistrement], watcher: OutputWatcher,
                  alive: Callable[[], None], timeout: float = 120.0) -> int:
    """One record every 100 ms until the first output: the contender has started and joined its group.
    Returns how many were sent, once all of them are out."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        deadline = time.monotonic() + timeout
        sent, before = 0, watcher.count
        while watcher.count == before:
            alive()
            if time.monotonic() > deadline or sent == len(records):
                raise BenchError(f"no output within {timeout:.0f} s of the start")
            key, value, _ = records[sent]
            await producer.send_and_wait(topic, value, key=key)
            sent += 1
            await asyncio.sleep(0.1)
        return sent
    finally:
        await producer.stop()


async def run_contender(kind: str, opts: Options, data: Donnees, progress: Progress) -> Figures:
    """Start, warm up (group join), latency at the offered rate, then drain a backlog.

    The latency phase comes first, on fresh topics: the embedded broker slows down as a topic
    fills with small batches, which would penalise whoever writes small batches afterwards.
    The backlog is written while the contender is frozen (SIGSTOP, shorter than a session
    timeout), so that it drains a full backlog from the moment it resumes."""
    prefix = f"bench-{opts.run_id}-{kind}"
    entree = contenders.entree(prefix)
    await create_fresh_topics(opts.bootstrap, contenders.hub_topic_names(prefix), opts.partitions)
    watcher = OutputWatcher(opts.bootstrap, contenders.sortie(prefix), opts.partitions)
    if kind == "hub":
        codec = AvroCodec()
        watcher.decide_le = lambda value: codec.decode("Affectation", value)["decide_le"].timestamp()
    await watcher.start()
    started = time.perf_counter()
    proc = spawn(kind, opts, prefix, f"{prefix}-app")

    def alive() -> None:
        if proc.poll() is not None:
            raise BenchError(f"{kind} exited with status {proc.returncode}; see its log in {opts.log_dir}")

    def step(phase: str) -> Progress:
        return lambda _p, d, t: progress(f"{kind}: {phase}", d, t)

    try:
        progress(f"{kind}: start + join", 0, 1)
        warm = await warm_up(opts.bootstrap, entree, data.warm, watcher, alive)
        assert watcher.first_at is not None
        ready = watcher.first_at - started
        await watcher.wait_for(warm, timeout=60, alive=alive)
        progress(f"{kind}: start + join", 1, 1)

        await offer(opts.bootstrap, entree, data.paced, opts.rate, watcher, step("latence"))
        base = warm + len(data.paced)
        await watcher.wait_for(base, timeout=60, alive=alive)
        progress(f"{kind}: latence", len(data.paced), len(data.paced))
        lat = sorted(watcher.latencies)
        stages = watcher.stage_percentiles()
        watcher.sent_at.clear()
        watcher.sent_wall.clear()  # a copy's output matched on one key of the two noted

        n = len(data.backlog)
        fins0 = await rattrapage.fins_par_topic(opts.bootstrap, prefix, opts.embedded) if kind == "hub" else {}
        proc.send_signal(signal.SIGSTOP)
        try:
            await preload(opts.bootstrap, entree, data.backlog, step("préchargement"))
        finally:
            proc.send_signal(signal.SIGCONT)
            resumed = time.perf_counter()
        cpu0, broker0 = cpu_seconds(proc.pid), cpu_seconds(opts.broker_pid)
        spy = (profil.Enregistrement(proc.pid, opts.log_dir / "hub-profile.txt", opts.log_dir / "py-spy.log")
               if opts.profile and kind == "hub" else None)
        rss_at: dict[int, float] = {}

        def on_count(total: int) -> None:
            done = total - base
            progress(f"{kind}: débit", done, n)
            mark = (done // CHECKPOINT) * CHECKPOINT
            if mark and mark not in rss_at:
                rss_at[mark] = _proc_kb(proc.pid, "VmRSS") / 1024

        watcher.first_at = None
        watcher.on_count = on_count
        done_at = await watcher.wait_for(base + n, timeout=120 + n / 100, alive=alive)
        msgs_per_s = n / max(done_at - resumed, 1e-9)
        cpu = (cpu_seconds(proc.pid) - cpu0) / n * 1e6
        broker_cpu = (cpu_seconds(opts.broker_pid) - broker0) / n * 1e6 if opts.broker_pid else None
        peak = _proc_kb(proc.pid, "VmHWM") / 1024
        profile = await asyncio.to_thread(spy.arreter) if spy is not None else None
        restart = rattrape = None
        volumes: dict[str, float] = {}
        rebuilds: dict[str, float | None] = {}
        if kind == "hub":
            progress(f"{kind}: catch-up", 0, 1)
            rattrape = await rattrapage.attendre(opts.bootstrap, f"{prefix}-app", prefix, opts.embedded, alive)
            volumes = rattrapage.par_signalement(
                fins0, await rattrapage.fins_par_topic(opts.bootstrap, prefix, opts.embedded), n, entree, prefix)
            progress(f"{kind}: catch-up", 1, 1)
            progress(f"{kind}: restart on its state", 0, 1)
            await asyncio.to_thread(stop, proc)
            debut = time.perf_counter()
            proc = spawn(kind, opts, prefix, f"{prefix}-app", f"{kind}-restart.log")  # the first run's log stays
            restart = await _redemarrer(opts.bootstrap, entree, data.relance, watcher, alive, debut)
            progress(f"{kind}: restart on its state", 1, 1)
            progress(f"{kind}: rebuilds after the restart", 0, 1)
            rebuilds = await _reconstructions(opts.log_dir / f"{kind}-restart.log", debut, alive)
            progress(f"{kind}: rebuilds after the restart", 1, 1)
    finally:
        await watcher.stop()
        await asyncio.to_thread(stop, proc)
        shutil.rmtree(data_dir(opts, kind), ignore_errors=True)
    return Figures(kind, n, msgs_per_s, ready, percentile(lat, 0.50) * 1000, percentile(lat, 0.99) * 1000, peak,
                   cpu, broker_cpu, rss_at, restart, rattrape, volumes, stages, profile, rebuilds)


async def _redemarrer(bootstrap: str, topic: str, records: list[Enregistrement], watcher: OutputWatcher,
                      alive: Callable[[], None], started: float) -> float:
    """Seconds from a new process's start (``started``), on the drained state (its tables and their
    changelogs), to its first output of a new signalement: how long the hub is deaf after a deployment."""
    watcher.first_at, watcher.on_count = None, lambda n: None
    await warm_up(bootstrap, topic, records, watcher, alive, timeout=600.0)
    assert watcher.first_at is not None
    return watcher.first_at - started


REBUILDS = {"waiting files": "waiting files rebuilt from", "figures": "aggregates rebuilt for partitions"}


async def _reconstructions(log: Path, started: float, alive: Callable[[], None],
                           timeout: float = 300.0) -> dict[str, float | None]:
    """Seconds from the restarted hub's start to the end of each rebuild of its state it logs
    (:data:`REBUILDS`): they run beside its batches, so they may end after its first new output,
    and until the waiting files' ends a freed case's next signalement waits. None: not within ``timeout``."""
    vus: dict[str, float | None] = dict.fromkeys(REBUILDS)
    deadline, lu, pos = time.perf_counter() + timeout, "", 0
    while any(v is None for v in vus.values()) and time.perf_counter() < deadline:
        alive()
        suite, pos = await asyncio.to_thread(_lire_depuis, log, pos)
        lu = lu[-200:] + suite  # a marker may straddle two reads
        for nom, marque in REBUILDS.items():
            if vus[nom] is None and marque in lu:
                vus[nom] = time.perf_counter() - started
        await asyncio.sleep(0.2)
    return vus


def _lire_depuis(chemin: Path, pos: int) -> tuple[str, int]:
    with open(chemin, "rb") as f:
        f.seek(pos)
        octets = f.read()
    return octets.decode("utf-8", "replace"), pos + len(octets)


@dataclass
class Donnees:
    """The same signalements for every contender: each gets fresh topics (and a fresh
    group, fresh tables), so the same ids are new to each."""

    warm: list[Enregistrement]
    paced: list[Enregistrement]
    backlog: list[Enregistrement]
    relance: list[Enregistrement]  # sent after the hub's restart: new signalements


async def run(kinds: list[str], opts: Options, progress: Progress) -> dict[str, Figures]:
    paced_n = max(1, int(opts.rate * opts.duration))
    data = Donnees(
        warm=generer(1200, opts.run_id, start=10**9),
        paced=generer(paced_n, opts.run_id, start=opts.count),
        backlog=generer(opts.count, opts.run_id),
        relance=generer(6000, opts.run_id, start=2 * 10**9),
    )
    return {kind: await run_contender(kind, opts, data, progress) for kind in kinds}
