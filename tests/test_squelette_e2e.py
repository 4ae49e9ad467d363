"""The walking skeleton, end to end: HTTP post -> Kafka (real embedded broker) -> Faust worker
-> affectations topic -> SQL sink -> GET /v1/files. Once on SQLite, once on PostgreSQL."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import sqlalchemy as sa

from aiguillage import topics
from aiguillage.codec import AvroCodec
from tests.kafka_util import decode_local, read_topic

pytestmark = pytest.mark.kafka


def _wait_row(database_url: str, signalement_id: str, timeout: float = 45.0) -> dict:
    engine = sa.create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                with engine.connect() as conn:
                    row = conn.execute(
                        sa.text("SELECT * FROM affectations WHERE signalement_id = :id"), {"id": signalement_id}
                    ).mappings().first()
                if row:
                    return dict(row)
            except sa.exc.OperationalError:
                pass  # table not created yet
            time.sleep(0.3)
    finally:
        engine.dispose()
    raise AssertionError(f"no affectation row for {signalement_id} within {timeout:.0f} s")


def _post_and_find(hub, exemple: dict, jetons, emetteur) -> None:
    resp = httpx.post(f"{hub.base_url}/v1/signalements/cpam", json=exemple, headers=jetons.entete("cpam"), timeout=15)
    assert resp.status_code == 202, resp.text
    sid = resp.json()["signalement_id"]
    row = _wait_row(hub.database_url, sid)
    assert row["file"] == "31-toulouse-SPS"
    assert row["regle"] == "retard-ij"
    files = httpx.get(f"{hub.base_url}/v1/files", headers=emetteur.entete("assistant-toulouse"), timeout=10).json()
    file = next(f for f in files if f["file"] == "31-toulouse-SPS")
    assert sid in [s["signalement_id"] for s in file["signalements"]]


def test_cpam_signalement_reaches_its_queue_in_sqlite(hub_factory, sqlite_url, exemple_cpam, jetons, emetteur):
    _post_and_find(hub_factory(sqlite_url), exemple_cpam, jetons, emetteur)


@pytest.mark.postgres
def test_cpam_signalement_reaches_its_queue_in_postgresql(hub_factory, postgres_url, exemple_cpam, jetons, emetteur):
    exemple_cpam["reference"] = "CPAM31-PG-1"
    _post_and_find(hub_factory(postgres_url), exemple_cpam, jetons, emetteur)


def test_bad_bodies_get_a_4xx_naming_the_problem_and_no_nir_leaks(hub_factory, sqlite_url, exemple_cpam, broker, jetons):
    hub = hub_factory(sqlite_url, components=("gateway",))
    url = f"{hub.base_url}/v1/signalements/cpam"
    auth = jetons.entete("cpam")
    nir_clair = exemple_cpam["assure"]["nir"]

    bad_key = json.loads(json.dumps(exemple_cpam))
    bad_key["assure"]["nir"] = nir_clair[:-2] + "00"
    r = httpx.post(url, json=bad_key, headers=auth)
    assert r.status_code == 422 and r.json()["error"] == "nir-cle-invalide"
    assert r.json()["fields"][0]["field"] == "assure.nir"

    no_commune = json.loads(json.dumps(exemple_cpam))
    del no_commune["assure"]["commune_insee"]
    r = httpx.post(url, json=no_commune, headers=auth)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "assure.commune_insee"

    r = httpx.post(url, content=b'{"reference": "x", ', headers={"Content-Type": "application/json", **auth})
    assert r.status_code == 422 and r.json()["error"] == "json-invalide"

    r = httpx.post(url, content=b"<xml/>", headers={"Content-Type": "application/xml", **auth})
    assert r.status_code == 415

    r = httpx.post(f"{hub.base_url}/v1/signalements/inconnu", json={}, headers=auth)
    assert r.status_code == 404

    r = httpx.post(url, content=b"{" + b" " * 2_000_000 + b"}", headers={"Content-Type": "application/json", **auth})
    assert r.status_code == 413


    # Every rejected record is in the DLQ with a clear reason and an encrypted payload.
    codec = AvroCodec()
    dead = decode_local(codec, "DeadLetter", read_topic(broker.bootstrap, topics.REJETES))
    codes = {d["error_code"] for d in dead if d["stage"] == "gateway"}
    assert {"nir-cle-invalide", "champ-manquant", "json-invalide"} <= codes


def test_the_nir_appears_in_no_topic_table_or_log(hub_factory, sqlite_url, exemple_cpam, broker, jetons, emetteur):
    """Runs after the others in this module: everything they produced is searched too."""
    exemple_cpam["reference"] = "CPAM31-GREP-1"
    hub = hub_factory(sqlite_url)
    _post_and_find(hub, exemple_cpam, jetons, emetteur)
    nir_clair = exemple_cpam["assure"]["nir"].encode()
    variants = {nir_clair, nir_clair[:13]}
    from tests.kafka_util import all_topics, read_topics

    records = read_topics(broker.bootstrap, all_topics(broker.bootstrap))
    assert any(rec.topic == "signalements.entrants.cpam" for rec in records)  # the search saw the post
    for rec in records:
        blob = (rec.key or b"") + (rec.value or b"")
        assert not any(v in blob for v in variants), f"NIR in clear on {rec.topic}"
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        for row in conn.execute(sa.text("SELECT * FROM affectations")):
            assert not any(v.decode() in str(row) for v in variants)
    assert not any(v.decode() in hub.logs() for v in variants)
