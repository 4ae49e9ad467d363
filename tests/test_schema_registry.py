"""The Schema Registry client against a real registry: Apicurio Registry's Confluent-compatible API.

One registry for the module (started once, ~3 s; tests/registry_util.py fetches and runs it),
emptied before each test. Without it (no mvn, no java, Maven Central unreachable) the tests
that need it are skipped with a "!!!" reason; CI fetches it first.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import httpx
import pytest

from aiguillage import topics
from aiguillage.codec import CodecError, LocalSchemaRegistry, schemas_dir, stable_id
from aiguillage.config import Settings
from aiguillage.domain import Signalement, signalement_id
from aiguillage.schema_registry import (
    ConfluentSchemaRegistry,
    SchemaIncompatible,
    SchemaRegistryError,
    make_codec,
)
from aiguillage.topics import hub_topics
from sinks import db
from tests.kafka_util import read_topic
from tests.registry_util import APICURIO_VERSION, RealSchemaRegistry, RegistryUnavailable
from tests.test_squelette_e2e import _wait_row

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def real_registry() -> Iterator[RealSchemaRegistry]:
    try:
        server = RealSchemaRegistry().__enter__()
    except RegistryUnavailable as exc:
        pytest.skip(f"!!! no real Schema Registry (Apicurio Registry {APICURIO_VERSION}) here: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def registry(real_registry: RealSchemaRegistry) -> RealSchemaRegistry:
    real_registry.clear()  # shared by the module's tests: each starts from an empty registry
    return real_registry


def _record_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The (method, path) of every request the hub's client sends from now on."""
    calls: list[tuple[str, str]] = []
    real_call = ConfluentSchemaRegistry._call

    def recording(self: ConfluentSchemaRegistry, method: str, path: str, *args: object, **kwargs: object) -> object:
        calls.append((method, path))
        return real_call(self, method, path, *args, **kwargs)

    monkeypatch.setattr(ConfluentSchemaRegistry, "_call", recording)
    return calls


def _settings(url: str | None) -> Settings:
    return Settings(_env_file=None, schema_registry=url)


def _signalement() -> dict:
    return Signalement(
        signalement_id=signalement_id("cpam", "SR-1"),
        source="cpam",
        source_ref="SR-1",
        recu_le=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        nir_pseudonyme="b" * 64,
        annee_naissance=1980,
        sexe="M",
        commune_insee="69123",
        departement="69",
        situation="salarie",
        risque="maladie",
        motif="arret-long",
        consentement=True,
    ).to_avro()


def _schema_id(data: bytes) -> int:
    return struct.unpack(">bI", data[:5])[1]


def _with_version(tmp_path: Path, name: str, version: int, field: dict) -> Path:
    """A copy of schemas/avro/ plus ``<name>.v<version>.avsc`` = the latest one with ``field`` added."""
    directory = tmp_path / "avro"
    shutil.copytree(schemas_dir(), directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    raw = LocalSchemaRegistry(directory).latest(name).raw
    raw = {**raw, "fields": [*raw["fields"], field]}
    (directory / f"{name}.v{version}.avsc").write_text(json.dumps(raw), encoding="utf-8")
    return directory


def test_without_a_registry_url_the_codec_keeps_the_local_stable_ids():
    codec = make_codec(_settings(None))
    latest = LocalSchemaRegistry().latest("Signalement").version
    assert _schema_id(codec.encode("Signalement", _signalement())) == stable_id("Signalement", latest)


def test_every_topic_value_schema_is_registered_under_its_topic_subject(registry):
    codec = make_codec(_settings(registry.url))
    expected = {f"{t.name}-value" for t in hub_topics()}
    assert expected <= set(registry.subjects())
    # One schema, one id, whatever the number of topics carrying it (ids are global).
    entrants = {registry.latest_id(s) for s in expected if s.startswith("signalements.entrants.")}
    assert len(entrants) == 1
    data = codec.encode("Signalement", _signalement())
    assert _schema_id(data) == entrants.pop()
    assert codec.decode("Signalement", data)["source_ref"] == "SR-1"


def test_a_restart_reuses_the_registered_ids_without_new_versions(registry, monkeypatch):
    first = make_codec(_settings(registry.url))
    versions = {s: registry.versions(s) for s in registry.subjects()}
    calls = _record_calls(monkeypatch)
    second = make_codec(_settings(registry.url))
    assert {s: registry.versions(s) for s in registry.subjects()} == versions
    assert calls and not [path for method, path in calls if path.endswith("/versions")]
    for name in ("Signalement", "Affectation", "DeadLetter"):
        assert first.registry.latest(name).schema_id == second.registry.latest(name).schema_id


def _newer_signalement(codec, registry, subject: str, field: str, value: str) -> tuple[int, io.BytesIO]:
    """A partner's newer, compatible Signalement (one more field, with a default) registered under
    ``subject``, and a record written with it in the wire format."""
    raw = json.loads(json.dumps(codec.registry.latest("Signalement").raw))
    raw["fields"].append({"name": field, "type": "string", "default": "api"})
    newer_id = registry.register(subject, json.dumps(raw))
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, newer_id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(raw), {**_signalement(), field: value})
    return newer_id, buf


def test_an_unknown_id_on_the_wire_is_fetched_once_then_cached(registry, monkeypatch):
    codec = make_codec(_settings(registry.url))
    # A partner produces with a newer, compatible Signalement it registered itself.
    newer_id, buf = _newer_signalement(codec, registry, "signalements.entrants.spst-value", "canal", "sftp")
    calls = _record_calls(monkeypatch)

    for _ in range(3):
        decoded = codec.decode("Signalement", buf.getvalue())
    assert decoded["source_ref"] == "SR-1" and "canal" not in decoded  # read as this hub's version
    assert calls == [("GET", f"/schemas/ids/{newer_id}")]


def test_an_agent_fetches_a_new_id_before_decoding_without_blocking_and_remembers_unknown_ones(registry, monkeypatch):
    """What the agents and sinks do with a batch (AvroCodec.connaitre): the ids it lacks fetched by
    the asynchronous client, once; an id the registry does not know asked about once, then refused
    from memory (a flood of bogus records costs one request)."""
    codec = make_codec(_settings(registry.url))
    newer_id, buf = _newer_signalement(codec, registry, "signalements.entrants.cpam-value", "canal2", "x")
    bogus = b"\x00\x00\x0f\x42\x3fxx"
    asked: list[str] = []
    real_acall = ConfluentSchemaRegistry._acall

    async def recording(self, method, path, body=None):
        asked.append(path)
        return await real_acall(self, method, path, body)

    monkeypatch.setattr(ConfluentSchemaRegistry, "_acall", recording)
    blocking = _record_calls(monkeypatch)
    for _ in range(3):
        asyncio.run(codec.connaitre([buf.getvalue(), bogus, bogus]))
    assert sorted(asked) == sorted([f"/schemas/ids/{newer_id}", "/schemas/ids/999999"])
    assert codec.decode("Signalement", buf.getvalue())["source_ref"] == "SR-1"
    with pytest.raises(CodecError) as exc:
        codec.decode("Signalement", bogus)
    assert exc.value.code == "schema-inconnu" and blocking == []  # from memory, no request at all


def test_an_id_the_registry_does_not_know_is_a_codec_error_for_the_dlq(registry):
    codec = make_codec(_settings(registry.url))
    with pytest.raises(CodecError) as exc:
        codec.decode("Signalement", b"\x00\x00\x01\x86\xa0xx")
    assert exc.value.code == "schema-inconnu"


def test_a_compatible_new_version_is_registered_and_becomes_the_latest(registry, tmp_path):
    make_codec(_settings(registry.url))
    nouvelle = LocalSchemaRegistry().latest("Signalement").version + 1
    directory = _with_version(tmp_path, "Signalement", nouvelle, {"name": "canal", "type": "string", "default": "api"})
    codec = make_codec(_settings(registry.url), local_dir=directory)
    assert len(registry.versions("signalements.entrants.cpam-value")) == nouvelle
    data = codec.encode("Signalement", {**_signalement(), "canal": "api"})
    assert codec.registry.by_id(_schema_id(data)).version == nouvelle


def test_an_incompatible_schema_refuses_to_start_naming_the_subject_and_why(registry, tmp_path):
    make_codec(_settings(registry.url))
    before = registry.versions("affectations-value")
    latest = LocalSchemaRegistry().latest("Affectation").version
    directory = _with_version(tmp_path, "Affectation", latest + 1, {"name": "equipe_id", "type": "string"})
    with pytest.raises(SchemaIncompatible) as exc:
        make_codec(_settings(registry.url), local_dir=directory)
    message = str(exc.value)
    assert f"Affectation.v{latest + 1}.avsc" in message and "'affectations-value'" in message
    # Apicurio's reason, from the registration it refuses (its compatibility check gives none):
    # "Incompatible artifact: affectations-value [AVRO], num of incompatible diffs: {1},
    # list of diff types: [equipe_id at /fields/<n>]".
    assert "Incompatible artifact: affectations-value [AVRO]" in message
    assert "[equipe_id at /fields/" in message
    assert registry.versions("affectations-value") == before  # nothing more registered


def test_the_worker_process_refuses_to_start_on_an_incompatible_registry(registry, cles):
    # The registry already holds an Affectation without a field the hub's schema requires.
    raw = json.loads(json.dumps(LocalSchemaRegistry().latest("Affectation").raw))
    required = next(f for f in raw["fields"] if "default" not in f and f["name"] != "signalement_id")
    raw["fields"].remove(required)
    registry.register("affectations-value", json.dumps(raw))
    env = {
        "PATH": "/usr/bin:/bin",
        "AIGUILLAGE_BROKER": "kafka://127.0.0.1:9",
        "AIGUILLAGE_SCHEMA_REGISTRY": registry.url,
        **cles,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "aiguillage", "worker"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "not compatible" in proc.stderr and "affectations-value" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unreachable_registry_is_a_clear_start_up_error():
    with pytest.raises(SchemaRegistryError, match="does not answer"):
        make_codec(_settings("http://127.0.0.1:9"))


@pytest.mark.kafka
def test_the_pipeline_runs_on_registry_ids_when_a_registry_is_configured(
    registry, hub_factory, sqlite_url, exemple_cpam, broker, monkeypatch, jetons
):
    """Gateway, worker and sink, as real processes, all register and use the registry's ids."""
    monkeypatch.setenv("AIGUILLAGE_SCHEMA_REGISTRY", registry.url)  # the children inherit it
    # Migrate first, as compose's `migrate` step does: the gateway and the sink would otherwise
    # both create the tables of a fresh database at the same moment.
    db.upgrade(sqlite_url)
    hub = hub_factory(sqlite_url)
    exemple_cpam["reference"] = "CPAM31-REGISTRY-1"
    resp = httpx.post(
        f"{hub.base_url}/v1/signalements/cpam", json=exemple_cpam, headers=jetons.entete("cpam"), timeout=15
    )
    assert resp.status_code == 202, resp.text
    sid = resp.json()["signalement_id"]
    assert _wait_row(sqlite_url, sid)["file"] == "31-toulouse-SPS"

    ids = {s: registry.latest_id(s) for s in ("signalements.entrants.cpam-value", "affectations-value")}
    affectations = [r for r in read_topic(broker.bootstrap, topics.AFFECTATIONS) if r.key == sid.encode()]
    assert affectations and all(_schema_id(r.value) == ids["affectations-value"] for r in affectations)
    codec = make_codec(_settings(registry.url))
    entrants = [
        codec.decode("Signalement", r.value)["signalement_id"]
        for r in read_topic(broker.bootstrap, topics.entrants("cpam"))
        if _schema_id(r.value) == ids["signalements.entrants.cpam-value"]
    ]
    assert entrants == [sid]
    assert ids["affectations-value"] != stable_id("Affectation", 1)  # not the local ids
