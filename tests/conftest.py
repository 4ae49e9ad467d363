"""Shared fixtures: real brokers, real databases, the hub's real processes.

Two brokers, each started once per test process when a test asks for it:
- Apache Kafka 4.x (KRaft, one node, from its Maven Central jars): the production path. Modules
  marked ``kafka`` get it as ``broker``.
- the embedded Tansu broker of ``aiguillage up``: modules marked ``embedded`` get it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from aiguillage import nir
from aiguillage.broker import EmbeddedBroker, free_port
from aiguillage.kafka_local import LocalKafka
from aiguillage.runtime import Hub, child_env, wait_http
from aiguillage.topics import create_topics
from sinks import db
from tests.oidc_util import Emetteur

ROOT = Path(__file__).resolve().parent.parent
EXEMPLES = ROOT / "connectors" / "exemples"
# The tests SIGKILL workers and sinks: their partitions move after 10 s, not Kafka's usual 45.
SESSION_TIMEOUT = "10"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


Broker = EmbeddedBroker | LocalKafka


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """One Apache Kafka node for the session (its jars fetched first if the cache lacks them)."""
    with LocalKafka(tmp_path_factory.mktemp("kafka")) as k:
        asyncio.run(create_topics(k.bootstrap, partitions=4))
        yield k


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_file=log) as b:
        asyncio.run(create_topics(b.bootstrap, partitions=4))
        yield b


def broker_of(node: pytest.Item | pytest.Module | None) -> str:
    """``kafka`` or ``embedded``: the marker the test (or its module) carries; Kafka by default."""
    if node is not None and node.get_closest_marker("embedded") is not None:
        return "embedded"
    return "kafka"


@pytest.fixture(scope="module")
def broker(request: pytest.FixtureRequest) -> Broker:
    """The session broker this module runs on: Apache Kafka, or the embedded one if marked so."""
    return request.getfixturevalue(broker_of(request.node))


@pytest.fixture(scope="session")
def emetteur() -> Iterator[Emetteur]:
    """The test identity provider (tests/oidc_util.py): its keys, its JWKS over HTTP, its tokens."""
    e = Emetteur()
    yield e
    e.close()


@pytest.fixture(scope="session")
def cles() -> dict[str, str]:
    return {
        "AIGUILLAGE_PSEUDONYM_KEY": secrets.token_hex(32),
        "AIGUILLAGE_DLQ_KEY": secrets.token_hex(32),
    }


@dataclass(frozen=True)
class Jetons:
    """A partner-token file for the test session, and the clear token of each source."""

    path: Path
    par_source: dict[str, str]

    def entete(self, source: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.par_source[source]}"}


@pytest.fixture(scope="session")
def jetons(tmp_path_factory: pytest.TempPathFactory) -> Jetons:
    from aiguillage.domain import Source
    from connectors.jetons import emettre

    path = tmp_path_factory.mktemp("jetons") / "tokens.json"
    return Jetons(path, {s.value: emettre(path, s)[0] for s in Source})


@pytest.fixture
def exemple_cpam() -> dict:
    return json.loads((EXEMPLES / "cpam.json").read_text(encoding="utf-8"))


def nir_aleatoire(rng: object = None) -> str:
    import random

    r = rng or random
    corps = f"{r.choice('12')}{r.randint(40, 99):02d}{r.randint(1, 12):02d}31{r.randint(1, 999):03d}{r.randint(1, 999):03d}"
    return nir.avec_cle(corps)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'aiguillage.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"aiguillage_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"!!! PostgreSQL on 127.0.0.1:5432 does not answer: {exc.orig}")
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@dataclass
class RunningHub:
    hub: Hub
    base_url: str
    database_url: str
    env: dict[str, str]

    def logs(self) -> str:
        return "\n".join(
            f"== {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(self.hub.log_dir.glob("*.log"))
        )


@pytest.fixture
def hub_factory(
    broker: Broker, cles: dict[str, str], jetons: Jetons, emetteur, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator:
    started: list[RunningHub] = []

    def start(database_url: str, components: tuple[str, ...] = ("worker", "sink-affectations", "gateway"),
              **extra_env: str) -> RunningHub:
        # Migrate once, before the gateway and the sinks start: as `aiguillage up` does, so that
        # two processes never create the same tables at the same time.
        db.upgrade(database_url)
        port = free_port()
        env = child_env(
            **broker.client_env(),
            AIGUILLAGE_DATABASE_URL=database_url,
            AIGUILLAGE_HTTP_PORT=str(port),
            AIGUILLAGE_WORKER_ID=f"aiguillage-test-{uuid.uuid4().hex[:8]}",
            AIGUILLAGE_TOKENS_FILE=str(jetons.path),
            AIGUILLAGE_AGREGATS_INTERVALLE="1",  # the tests wait for the figures: no need to wait 5 s a stage
            **{"AIGUILLAGE_GROUP_SESSION_TIMEOUT": SESSION_TIMEOUT,
               **cles,
               **emetteur.env(),  # staff tokens: emetteur.entete("responsable-31") (tests/oidc_util.py)
               **extra_env},  # a test may set any of them otherwise
        )
        running = RunningHub(Hub(env, tmp_path / f"log-{len(started)}"), f"http://127.0.0.1:{port}", database_url, env)
        started.append(running)
        for name in components:
            running.hub.start(name)
        if "gateway" in components:
            wait_http(f"{running.base_url}/healthz", timeout=60, proc=running.hub.processes["gateway"])
        return running

    yield start
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for running in started:
        running.hub.stop_all()
        if failed:
            print(running.logs())


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
