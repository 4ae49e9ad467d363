"""Scale-out on the embedded broker: three worker processes in one consumer group share the
ingress partitions; one is killed with SIGKILL mid-stream; every signalement still ends up
routed once in SQL (one row each), through the affectations sink into PostgreSQL.

Under at least once the affectations topic may hold a signalement twice (the killed worker
sent an affectation but had not committed its offset); the sink's upsert makes it one row.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from aiguillage import topics
from aiguillage.codec import AvroCodec
from aiguillage.domain import Signalement, Source, signalement_id
from aiguillage.kafka import Publieur
from tests.kafka_util import _all_topics, read_topic, read_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parent.parent
ASSIGNED = re.compile(r"ingress partitions assigned: (.*)$", re.MULTILINE)
SOURCES = [Source.CPAM, Source.SPST, Source.MDPH]


def _signalements(run: str, start: int, count: int) -> list[Signalement]:
    return [
        Signalement(
            signalement_id=signalement_id(SOURCES[i % 3], f"{run}-{i}"),
            source=SOURCES[i % 3],
            source_ref=f"{run}-{i}",
            recu_le=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
            nir_pseudonyme=uuid.uuid4().hex * 2,  # spreads the keys over the partitions
            annee_naissance=1970 + i % 30,
            sexe="F" if i % 2 else "M",
            commune_insee="31555",
            departement="31",
            situation="salarie",
            risque="maladie",
            motif="arret-long",
            consentement=True,
        )
        for i in range(start, start + count)
    ]


def _produce(bootstrap: str, batch: list[Signalement]) -> None:
    async def send() -> None:
        publieur = Publieur(bootstrap, AvroCodec())
        try:
            for s in batch:
                await publieur.send(topics.entrants(s.source), "Signalement", s.to_avro(), key=s.cle())
        finally:
            await publieur.close()

    asyncio.run(send())


def _wait(what: str, condition: Callable[[], bool], timeout: float, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s\n{logs()}")


def _missing(bootstrap: str, database_url: str, ids: set[str]) -> str:
    """Where the signalements missing from SQL got to: the worker's fault or the sink's."""
    missing = ids - set(_rows(database_url, ids))
    on_topic = {r.key.decode() for r in read_topic(bootstrap, topics.AFFECTATIONS) if r.key} & missing
    out = f"{len(missing)} missing from SQL, of which {len(on_topic)} are on the affectations topic\n"
    if missing - on_topic:  # where each got to: the records that name it, on any topic
        tous = read_topics(bootstrap, [t for t in asyncio.run(_all_topics(bootstrap)) if not t.startswith("__")])
        for sid in sorted(missing - on_topic)[:3]:
            vus = [f"{r.topic}[{r.partition}]@{r.offset}" for r in tous if sid.encode() in (r.value or b"") + (r.key or b"")]
            out += f"{sid} is in: {', '.join(vus) or 'no topic'}\n"
    return out


def _assignment(log: Path) -> set[str] | None:
    """The last assignment a worker logged (None before its first)."""
    found = ASSIGNED.findall(log.read_text(errors="replace")) if log.exists() else []
    if not found:
        return None
    return set() if found[-1].strip() == "none" else set(found[-1].split())


def _shared(logs: list[Path], expected: set[str]) -> bool:
    """Each worker owns some ingress partitions, none twice, all of them between them."""
    owned = [_assignment(p) for p in logs]
    if any(not o for o in owned):
        return False
    return sum(len(o) for o in owned) == len(expected) and set().union(*owned) == expected


def _rows(database_url: str, ids: set[str]) -> list[str]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT signalement_id FROM affectations")).scalars().all()
    except sa.exc.ProgrammingError:
        return []  # the sink has not created the table yet
    finally:
        engine.dispose()
    return [i for i in found if i in ids]


@pytest.fixture
def workers(hub_factory, postgres_url, tmp_path) -> Iterator:
    hub = hub_factory(postgres_url, components=("sink-affectations",))
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"worker-{n}.log" for n in range(3)]
    for log in logs:
        with open(log, "wb") as out:
            # Same AIGUILLAGE_WORKER_ID as each other (the env is the hub's): one consumer group.
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "aiguillage", "worker"],
                cwd=ROOT, env=hub.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            ))

    def all_logs() -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs) + hub.logs()

    yield hub, procs, logs, all_logs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(ROOT / f"{hub.env['AIGUILLAGE_WORKER_ID']}-data", ignore_errors=True)  # Faust's datadir


def test_three_workers_share_the_partitions_and_a_killed_one_loses_nothing(workers, broker):
    hub, procs, logs, all_logs = workers
    ingress = {f"{topics.entrants(s)}[{p}]" for s in Source for p in range(4)}
    _wait("the three workers did not share the ingress partitions",
          lambda: _shared(logs, ingress), 90, all_logs)

    run = uuid.uuid4().hex[:8]
    first, second = _signalements(run, 0, 150), _signalements(run, 150, 150)
    ids = {s.signalement_id for s in first + second}
    _produce(broker.bootstrap, first)
    _wait("no affectation reached SQL", lambda: len(_rows(hub.database_url, ids)) >= 20, 60, all_logs)

    procs[0].send_signal(signal.SIGKILL)  # mid-stream: its uncommitted work is someone else's now
    procs[0].wait()
    killed_at = time.monotonic()
    _produce(broker.bootstrap, second)
    _wait("the two survivors did not take over all the ingress partitions",
          lambda: _shared(logs[1:], ingress), 60, all_logs)
    print(f"\nthe survivors owned every ingress partition {time.monotonic() - killed_at:.1f} s after the SIGKILL")
    # Generous: the survivors recover the dead one's tables before they go on (slow on a loaded CI machine).
    _wait("not every signalement reached SQL", lambda: len(_rows(hub.database_url, ids)) == len(ids), 180,
          lambda: _missing(broker.bootstrap, hub.database_url, ids) + all_logs())

    rows = _rows(hub.database_url, ids)
    assert len(rows) == len(set(rows)) == 300  # one row per signalement
    on_topic = [
        r.key.decode() for r in read_topic(broker.bootstrap, topics.AFFECTATIONS) if r.key and r.key.decode() in ids
    ]
    assert set(on_topic) == ids
    print(f"affectations on the topic for 300 signalements: {len(on_topic)} (at least once)")
    # The deployed worker's event loop (AIGUILLAGE_EVENT_LOOP's default), as its log says it runs.
    assert all("event loop: uvloop" in p.read_text(errors="replace") for p in logs), all_logs()
