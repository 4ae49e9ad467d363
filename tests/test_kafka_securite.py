"""Security on a real listener: SASL_SSL with SCRAM-SHA-512 over TLS, Kafka's StandardAuthorizer,
and the ACLs of ``aiguillage acls`` applied for real (``--apply``).

A partner's principal may write only its own ingress topic and read only its own retours; the
hub's gateway, worker and sinks run end to end, each under its own principal.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from aiguillage import topics
from aiguillage.broker import free_port
from aiguillage.kafka_local import LocalKafka
from aiguillage.runtime import Hub, child_env, wait_http
from sinks import db
from tests.conftest import ROOT, SESSION_TIMEOUT
from tests.test_squelette_e2e import _wait_row

pytestmark = pytest.mark.kafka
SINKS = ("sink-affectations", "sink-suivis", "sink-agregats", "sink-retours")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalKafka, str]]:
    """A secured node, its topics created by the hub's admin principal, the ACLs applied."""
    worker_id = f"aiguillage-secure-{uuid.uuid4().hex[:6]}"
    with LocalKafka(tmp_path_factory.mktemp("secure"), secure=True) as cluster:
        for args, principal in ((["acls", "--apply", "--worker-id", worker_id], "admin"),
                                (["topics", "create"], "aiguillage-admin")):
            proc = subprocess.run([sys.executable, "-m", "aiguillage", *args], check=False, cwd=ROOT,
                                  capture_output=True, text=True, timeout=60, env=child_env(**cluster.client_env(principal)))
            assert proc.returncode == 0, proc.stdout + proc.stderr
        yield cluster, worker_id


def test_no_listener_answers_a_client_without_credentials(secured):
    cluster, _ = secured

    async def plaintext() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, request_timeout_ms=3000)
        try:
            await producer.start()
        finally:
            await producer.stop()

    with pytest.raises(Exception):  # noqa: B017 - whatever the client says, it is not let in
        asyncio.run(asyncio.wait_for(plaintext(), 15))


def test_a_partner_writes_its_own_ingress_and_nothing_else(secured):
    cluster, _ = secured

    async def write(topic: str) -> None:
        producer = AIOKafkaProducer(**cluster.client_kwargs("partenaire-cpam"), acks="all")
        await producer.start()
        try:
            await asyncio.wait_for(producer.send_and_wait(topic, b"x", key=b"k"), 20)
        finally:
            await producer.stop()

    asyncio.run(write(topics.entrants("cpam")))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(write(topics.entrants("spst")))


def test_a_partner_reads_its_own_retours_and_not_another_partners(secured):
    cluster, _ = secured

    async def read(topic: str) -> None:
        # In its own group (partenaire-cpam-…, as its ACL allows): how a partner consumes its retours.
        consumer = AIOKafkaConsumer(topic, **cluster.client_kwargs("partenaire-cpam"), group_id="partenaire-cpam-test",
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        try:
            await consumer.start()
            await consumer.getmany(timeout_ms=2000)
        finally:
            await consumer.stop()

    asyncio.run(read(topics.retours("cpam")))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(read(topics.retours("spst")))


def test_gateway_worker_and_sinks_run_end_to_end_under_their_own_principals(
    secured, cles, jetons, tmp_path: Path, exemple_cpam
):
    cluster, worker_id = secured
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'aiguillage.db'}"
    db.upgrade(database_url)
    env = child_env(
        AIGUILLAGE_DATABASE_URL=database_url, AIGUILLAGE_HTTP_PORT=str(port), AIGUILLAGE_WORKER_ID=worker_id,
        AIGUILLAGE_TOKENS_FILE=str(jetons.path), AIGUILLAGE_DATA_DIR=str(tmp_path / "var"),
        AIGUILLAGE_GROUP_SESSION_TIMEOUT=SESSION_TIMEOUT, **cles,
    )
    hub = Hub(env, tmp_path / "log")
    try:
        hub.start("worker", env=cluster.client_env("aiguillage-worker"))
        for sink in SINKS:
            hub.start(sink, env=cluster.client_env("aiguillage-sink"))
        hub.start("gateway", env=cluster.client_env("aiguillage-gateway"))
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", timeout=60, proc=hub.processes["gateway"])
        exemple_cpam["reference"] = "CPAM31-SASL-1"
        resp = httpx.post(f"{base}/v1/signalements/cpam", json=exemple_cpam, headers=jetons.entete("cpam"), timeout=30)
        assert resp.status_code == 202, resp.text
        sid = resp.json()["signalement_id"]
        assert _wait_row(database_url, sid, timeout=120)["file"] == "31-toulouse-SPS"
        assert not hub.dead(), hub.dead()
        logs = "\n".join(p.read_text(errors="replace") for p in sorted(hub.log_dir.glob("*.log")))
        assert "AuthorizationFailed" not in logs and "Not authorized" not in logs, logs[-4000:]
    finally:
        hub.stop_all()
