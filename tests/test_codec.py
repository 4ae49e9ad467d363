from __future__ import annotations

import itertools
import json
import struct
import uuid
from datetime import UTC, datetime

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from aiguillage.codec import AvroCodec, CodecError, LocalSchemaRegistry, schemas_dir
from aiguillage.domain import Signalement, signalement_id, uuid5_texte


def _signalement() -> Signalement:
    return Signalement(
        signalement_id=signalement_id("cpam", "R1"),
        source="cpam",
        source_ref="R1",
        recu_le=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        nir_pseudonyme="a" * 64,
        annee_naissance=1975,
        sexe="F",
        commune_insee="31555",
        departement="31",
        situation="salarie",
        risque="maladie",
        motif="arret-long",
        consentement=True,
    )


def test_wire_format_is_magic_byte_then_schema_id():
    codec = AvroCodec()
    data = codec.encode("Signalement", _signalement().to_avro())
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0
    assert schema_id == codec.registry.latest("Signalement").schema_id


def test_round_trip_gives_back_the_signalement():
    codec = AvroCodec()
    s = _signalement()
    assert Signalement.model_validate(codec.decode("Signalement", codec.encode("Signalement", s.to_avro()))) == s


def test_schema_ids_are_stable_across_registry_instances():
    a, b = LocalSchemaRegistry(), LocalSchemaRegistry()
    assert {n: a.latest(n).schema_id for n in a.names()} == {n: b.latest(n).schema_id for n in b.names()}


@pytest.mark.parametrize(
    "data,code",
    [(b"", "wire-format"), (b"\x01\x00\x00\x00\x01xx", "wire-format"), (b"\x00\x00\x00\x00\x07xx", "schema-inconnu")],
)
def test_unreadable_bytes_are_a_typed_error(data, code):
    with pytest.raises(CodecError) as exc:
        AvroCodec().decode("Signalement", data)
    assert exc.value.code == code


def test_a_truncated_body_is_a_typed_error():
    data = AvroCodec().encode("Signalement", _signalement().to_avro())
    with pytest.raises(CodecError):
        AvroCodec().decode("Signalement", data[:20])


def test_schemas_are_parsed_once_not_per_message(monkeypatch):
    codec = AvroCodec()
    calls = []
    monkeypatch.setattr(fastavro, "parse_schema", lambda *a, **k: calls.append(1))
    codec.decode("Signalement", codec.encode("Signalement", _signalement().to_avro()))
    assert calls == []


def test_every_schema_version_can_read_the_previous_one():
    """BACKWARD compatibility: the new reader schema reads data written with the previous version."""
    reg = LocalSchemaRegistry()
    for name in reg.names():
        versions = reg.versions(name)
        for old, new in itertools.pairwise(versions):
            # fastavro resolves writer->reader at read time; an empty record of defaults must pass.
            sample = _sample(old.raw)
            import io

            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, old.parsed, sample)
            buf.seek(0)
            fastavro.schemaless_reader(buf, old.parsed, new.parsed)
    assert all(json.loads(p.read_text())["type"] == "record" for p in schemas_dir().glob("*.avsc"))


def _sample(raw: dict) -> dict:
    """A minimal valid record for a schema: defaults, or a zero value of each type."""
    zero = {"string": "x", "int": 0, "long": 0, "boolean": False, "bytes": b"", "double": 0.0, "float": 0.0}
    out = {}
    for f in raw["fields"]:
        if "default" in f:
            out[f["name"]] = f["default"]
            continue
        t = f["type"]
        if isinstance(t, dict):
            t = t["type"]
        if isinstance(t, list):
            t = next(x for x in t if x != "null")
        out[f["name"]] = zero.get(t, 0) if isinstance(t, str) else {}
    return out


@given(st.one_of(st.uuids().map(str), st.uuids().map(lambda u: u.hex.upper()), st.uuids().map(lambda u: f"{{{u}}}"),
                 st.text(alphabet="0123456789abcdefABCDEF-{}:urnid", max_size=45)))
def test_a_signalement_id_is_what_uuid_reads(v):
    """The canonical form is checked by a regex (fast), any other as the uuid module reads it."""
    try:
        uuid.UUID(v)
        lisible = True
    except ValueError:
        lisible = False
    try:
        _signalement().model_validate({**_signalement().model_dump(), "signalement_id": v})
        accepte = True
    except ValidationError:
        accepte = False
    assert accepte is lisible


@given(st.uuids(), st.text(max_size=80))
def test_uuid5_texte_is_the_uuid_modules_uuid5(espace, nom):
    """The hot path's UUIDv5 (signalement and Retour ids) gives the uuid module's, character for character."""
    assert uuid5_texte(espace, nom) == str(uuid.uuid5(espace, nom))
