"""The five partners end to end on the real embedded broker, with one hub for the module:
HTTP in each native format -> ingress topic -> Faust worker -> Affectation in SQL; tokens;
idempotent resend; direct Kafka produce validated by the stream; hostile input; DLQ
list/replay; and no NIR in clear anywhere."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from aiguillage import topics
from aiguillage.broker import free_port
from aiguillage.codec import AvroCodec
from aiguillage.dlq import Rejet, dead_letter
from aiguillage.domain import Source, signalement_id
from aiguillage.runtime import Hub, child_env, wait_http
from tests.conftest import EXEMPLES, ROOT, RunningHub
from tests.kafka_util import all_topics, decode_local, read_topic, read_topics

pytestmark = pytest.mark.kafka

CONTENT = {
    Source.SERVICE_MEDICAL: ("service-medical.csv", "text/csv"),
    Source.CPAM: ("cpam.json", "application/json"),
    Source.SPST: ("spst.fhir.json", "application/fhir+json"),
    Source.CAP_EMPLOI: ("cap-emploi.json", "application/json"),
    Source.MDPH: ("mdph.xml", "application/xml"),
}
NIR = re.compile(rb"[1-478]\d{12}")


@pytest.fixture(scope="module")
def hub(broker, cles, jetons, tmp_path_factory):
    yield from module_hub(broker, cles, jetons, tmp_path_factory.mktemp("partenaires"), "partenaires",
                          ("worker", "sink-affectations", "gateway"))


def module_hub(broker, cles, jetons, tmp: Path, nom: str, components: tuple[str, ...],
               **extra: str) -> Iterator[RunningHub]:
    """One hub for a whole module (its own worker group and SQLite file), stopped after it."""
    port = free_port()
    env = child_env(
        **broker.client_env(),
        AIGUILLAGE_DATABASE_URL=f"sqlite:///{tmp / 'aiguillage.db'}",
        AIGUILLAGE_HTTP_PORT=str(port),
        AIGUILLAGE_WORKER_ID=f"aiguillage-{nom}-{uuid.uuid4().hex[:8]}",
        AIGUILLAGE_TOKENS_FILE=str(jetons.path),
        AIGUILLAGE_DATA_DIR=str(tmp / "var"),
        **cles,
        **extra,
    )
    running = RunningHub(Hub(env, tmp / "log"), f"http://127.0.0.1:{port}", env["AIGUILLAGE_DATABASE_URL"], env)
    for name in components:
        running.hub.start(name)
    wait_http(f"{running.base_url}/healthz", timeout=60, proc=running.hub.processes["gateway"])
    yield running
    running.hub.stop_all()


def post(hub, jetons, source: Source, body: bytes | None = None, token_of: str | None = None, content_type=None):
    fichier, ct = CONTENT[source]
    headers = {"Content-Type": content_type or ct, **jetons.entete(token_of or source.value)}
    return httpx.post(f"{hub.base_url}/v1/signalements/{source.value}", content=body or (EXEMPLES / fichier).read_bytes(),
                      headers=headers, timeout=15)


def wait_rows(database_url: str, ids: set[str], timeout: float = 60.0) -> dict[str, dict]:
    engine = sa.create_engine(database_url)
    deadline, found = time.monotonic() + timeout, {}
    try:
        while time.monotonic() < deadline and set(found) != ids:
            try:
                with engine.connect() as conn:
                    for row in conn.execute(sa.text("SELECT * FROM affectations")).mappings():
                        if row["signalement_id"] in ids:
                            found[row["signalement_id"]] = dict(row)
            except sa.exc.OperationalError:
                pass  # the sink has not created the table yet
            time.sleep(0.3)
    finally:
        engine.dispose()
    assert set(found) == ids, f"no affectation for {ids - set(found)} within {timeout:.0f} s"
    return found


def decoded(bootstrap: str, topic: str, schema: str) -> list[dict]:
    codec = AvroCodec()
    return decode_local(codec, schema, read_topic(bootstrap, topic, idle=0.5))


def cli(hub, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aiguillage", *args], env=hub.env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_each_partner_example_reaches_its_ingress_topic_then_a_queue(hub, jetons, broker):
    ids: dict[Source, list[str]] = {}
    for source in Source:
        r = post(hub, jetons, source)
        assert r.status_code == 202, (source, r.text)
        body = r.json()
        ids[source] = body["publies"] if "publies" in body else [body["signalement_id"]]
    assert len(ids[Source.SERVICE_MEDICAL]) == 2  # the CSV example holds two rows
    for source, sids in ids.items():
        on_topic = {s["signalement_id"] for s in decoded(broker.bootstrap, topics.entrants(source), "Signalement")}
        assert set(sids) <= on_topic, source
    rows = wait_rows(hub.database_url, {i for sids in ids.values() for i in sids})
    assert rows[ids[Source.SPST][0]]["file"] == "hors-territoire"  # Rhône: outside the Occitanie territories
    assert rows[ids[Source.MDPH][0]]["source"] == "mdph"


def test_tokens_no_token_or_a_wrong_one_is_401_another_sources_is_403(hub, jetons):
    url = f"{hub.base_url}/v1/signalements/cpam"
    body = (EXEMPLES / "cpam.json").read_bytes()
    ct = {"Content-Type": "application/json"}
    r = httpx.post(url, content=body, headers=ct)
    assert r.status_code == 401 and r.json()["error"] == "jeton-absent" and r.headers["www-authenticate"] == "Bearer"
    r = httpx.post(url, content=body, headers={**ct, "Authorization": "Bearer aig_not-a-token"})
    assert r.status_code == 401 and r.json()["error"] == "jeton-invalide"
    r = httpx.post(url, content=body, headers={**ct, **jetons.entete("mdph")})
    assert r.status_code == 403 and r.json()["error"] == "jeton-autre-source"


def test_tokens_added_and_revoked_with_the_cli_apply_at_once_and_are_stored_hashed(hub, jetons, broker):
    env = {**hub.env, "AIGUILLAGE_TOKENS_FILE": str(jetons.path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "aiguillage", "tokens", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, check=True)

    added = run("add", "cpam")
    token, token_id = added.stdout.strip(), re.search(r"token (\S+) for cpam", added.stderr)[1]
    assert token.startswith("aig_") and token not in jetons.path.read_text()
    assert token_id in run("list").stdout
    body = (EXEMPLES / "cpam.json").read_bytes()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    url = f"{hub.base_url}/v1/signalements/cpam"
    assert httpx.post(url, content=body, headers=headers, timeout=15).status_code == 202  # no restart needed
    run("revoke", token_id)
    assert httpx.post(url, content=body, headers=headers, timeout=15).status_code == 401
    assert httpx.post(url, content=body, headers={**headers, **jetons.entete("cpam")}, timeout=15).status_code == 202
    # Each change is in the audit trail, by the operator's account, with the token's id only.
    audit = [r for r in decode_local(AvroCodec(), "Audit", read_topic(broker.bootstrap,
                                                                        topics.AUDIT)) if r["equipe"] == token_id]
    assert sorted(r["action"] for r in audit) == ["jeton-ajout", "jeton-revocation"]
    assert all(r["qui"].startswith("cli:") and r["role"] == "operateur" for r in audit)
    assert token not in repr(audit)


def test_a_resend_answers_the_same_id_and_is_routed_once(hub, jetons, broker):
    doc = json.loads((EXEMPLES / "cap-emploi.json").read_text(encoding="utf-8"))
    doc["idDossier"] = f"CE-RESEND-{uuid.uuid4().hex[:6]}"
    body = json.dumps(doc).encode()
    first, second = post(hub, jetons, Source.CAP_EMPLOI, body), post(hub, jetons, Source.CAP_EMPLOI, body)
    assert first.status_code == second.status_code == 202
    sid = first.json()["signalement_id"]
    assert second.json()["signalement_id"] == sid
    # A later signalement of the same assuré shares the partition: once it is routed, the resend was seen.
    doc["idDossier"] += "-suite"
    marker = post(hub, jetons, Source.CAP_EMPLOI, json.dumps(doc).encode()).json()["signalement_id"]
    wait_rows(hub.database_url, {sid, marker})
    affectations = [a for a in decoded(broker.bootstrap, topics.AFFECTATIONS, "Affectation") if a["signalement_id"] == sid]
    assert len(affectations) == 1


def test_direct_kafka_produce_is_validated_by_the_stream(hub, broker, cles):
    from connectors.registry import CONNECTORS

    codec = AvroCodec()
    body = (EXEMPLES / "mdph.xml").read_bytes().replace(b"MDPH31-2026-000077", f"MDPH-KAFKA-{uuid.uuid4().hex[:6]}".encode())
    [good] = CONNECTORS[Source.MDPH].lire(body, datetime.now(UTC), cles["AIGUILLAGE_PSEUDONYM_KEY"].encode())
    bad = good.to_avro() | {"signalement_id": "not-a-uuid", "nir_pseudonyme": "not-a-pseudonym"}
    bad_key = f"direct-{uuid.uuid4().hex[:6]}".encode()
    # A valid record of another partner's, written on the MDPH topic: the MDPH cannot speak for the CPAM.
    spoof = good.to_avro() | {"source": "cpam", "signalement_id": signalement_id("cpam", good.source_ref)}
    spoof_key = f"spoof-{uuid.uuid4().hex[:6]}".encode()

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            await producer.send_and_wait(topics.entrants(Source.MDPH), codec.encode("Signalement", bad), key=bad_key)
            await producer.send_and_wait(topics.entrants(Source.MDPH), codec.encode("Signalement", spoof), key=spoof_key)
            await producer.send_and_wait(topics.entrants(Source.MDPH), codec.encode("Signalement", good.to_avro()), key=good.cle())
        finally:
            await producer.stop()

    asyncio.run(produce())
    wait_rows(hub.database_url, {good.signalement_id})
    [dl] = [d for d in decoded(broker.bootstrap, topics.REJETES, "DeadLetter") if d["original_key"] == bad_key]
    assert dl["stage"] == "stream" and dl["source"] == "mdph" and dl["error_code"] == "champ-invalide"
    assert "signalement_id" in dl["reason"] and "nir_pseudonyme" in dl["reason"]
    [dl] = [d for d in decoded(broker.bootstrap, topics.REJETES, "DeadLetter") if d["original_key"] == spoof_key]
    assert dl["stage"] == "stream" and dl["error_code"] == "source-usurpee"


HOSTILE = [
    (Source.MDPH, b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>', "xml-interdit"),
    (Source.MDPH, b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]><l>&x;</l>', "xml-interdit"),
    (Source.SPST, json.dumps({"resourceType": "Patient", "gender": "male"}).encode(), "fhir-type-inattendu"),
    (Source.SERVICE_MEDICAL, b"reference;nir;sexe\nSM-1;1;1\n", "colonne-manquante"),
    (Source.CAP_EMPLOI, b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "encodage-invalide"),
    (Source.SERVICE_MEDICAL, b"\xff\xd8\xff\xe0\x00\x10JFIF", "encodage-invalide"),
]


def _code(r: httpx.Response) -> str:
    """The machine code of a refusal: ours, or that of the SPST's OperationOutcome."""
    body = r.json()
    return body["error"] if "error" in body else body["issue"][0]["details"]["coding"][0]["code"]


def test_hostile_input_gets_a_clear_4xx_and_a_dead_letter_never_a_500(hub, jetons, broker):
    for source, body, code in HOSTILE:
        r = post(hub, jetons, source, body)
        assert r.status_code == 422 and _code(r) == code, (source, r.text)
    big = b"<a>" + b"x" * 1_100_000 + b"</a>"
    assert post(hub, jetons, Source.MDPH, big).status_code == 413
    gateway = [d for d in decoded(broker.bootstrap, topics.REJETES, "DeadLetter") if d["stage"] == "gateway"]
    assert {code for _, _, code in HOSTILE} <= {d["error_code"] for d in gateway}
    assert all(d["payload_chiffre"] and d["reason"] for d in gateway)
    assert httpx.get(f"{hub.base_url}/healthz").status_code == 200


def test_dlq_list_shows_reasons_and_replay_reinjects_what_now_passes(hub, broker, cles):
    # A record refused by an earlier version of the connector: its payload passes today.
    ref = f"MDPH-REPLAY-{uuid.uuid4().hex[:6]}"
    payload = (EXEMPLES / "mdph.xml").read_bytes().replace(b"MDPH31-2026-000077", ref.encode())
    dl = dead_letter(bytes.fromhex(cles["AIGUILLAGE_DLQ_KEY"]), source="mdph", stage="gateway",
                     rejet=Rejet("champ-invalide", "motif: an older connector did not know rqth"), payload=payload,
                     content_type="application/xml")

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            await producer.send_and_wait(topics.REJETES, AvroCodec().encode("DeadLetter", dl))
        finally:
            await producer.stop()

    asyncio.run(produce())
    listing = cli(hub, "dlq", "list", "--source", "mdph")
    assert listing.returncode == 0, listing.stderr
    assert "xml-interdit" in listing.stdout and "an older connector did not know rqth" in listing.stdout
    assert "cap-emploi" not in listing.stdout  # filtered by source

    replay = cli(hub, "dlq", "replay", "--source", "mdph", "--stage", "gateway")
    assert replay.returncode == 1, replay.stderr  # the hostile XML still fails, and says so
    assert "re-injected 1 signalement(s)" in replay.stdout
    assert "still failing: mdph/gateway: xml-interdit" in replay.stdout
    wait_rows(hub.database_url, {signalement_id("mdph", ref)})
    rejeux = [r for r in decode_local(AvroCodec(), "Audit", read_topic(broker.bootstrap, topics.AUDIT))
              if r["action"] == "dlq-rejeu" and signalement_id("mdph", ref) in r["signalements"]]
    assert len(rejeux) == 1 and rejeux[0]["equipe"] == "mdph"


def test_no_nir_sent_in_appears_in_any_topic_table_or_log(hub, broker):
    """Runs last in this module: searches everything the tests above (and before) produced."""
    sent = set()
    for fichier, _ in CONTENT.values():
        sent |= {m[:13] for m in NIR.findall((EXEMPLES / fichier).read_bytes())}
    assert len(sent) >= 6
    records = read_topics(broker.bootstrap, all_topics(broker.bootstrap))
    assert records
    for rec in records:
        blob = (rec.key or b"") + (rec.value or b"")
        assert not any(n in blob for n in sent), f"a NIR in clear on {rec.topic}"
    engine = sa.create_engine(hub.database_url)
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                assert not any(n.decode() in str(row) for n in sent), f"a NIR in clear in table {table}"
    engine.dispose()
    logs = "\n".join(p.read_text(errors="replace") for p in Path(hub.hub.log_dir).glob("*.log"))
    assert logs and not any(n.decode() in logs for n in sent)
