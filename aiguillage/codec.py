"""Avro values in the Confluent wire format: byte 0, a 4-byte big-endian schema id, the Avro body.

Schemas are parsed once, when the registry loads them; encoding and decoding
only look parsed schemas up by id.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import fastavro
from fastavro.types import Schema

MAGIC = 0
_HEADER = struct.Struct(">bI")
_FILE = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)\.v(?P<version>\d+)\.avsc$")


class CodecError(ValueError):
    """Bytes that are not a value this hub can read; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SchemaVersion:
    name: str
    version: int
    schema_id: int
    parsed: Schema
    raw: dict[str, Any]


class SchemaRegistry(Protocol):
    """What the codec needs from a registry (the local one, or a Confluent-compatible one)."""

    def latest(self, name: str) -> SchemaVersion: ...

    def by_id(self, schema_id: int) -> SchemaVersion: ...


def schemas_dir() -> Path:
    return Path(str(resources.files("schemas.avro")))


def stable_id(name: str, version: int) -> int:
    """A schema version's id, the same on every machine: no state to share for the local registry."""
    return (zlib.crc32(f"{name}.v{version}".encode()) & 0x7FFFFFFF) or 1


class LocalSchemaRegistry:
    """Reads ``schemas/avro/<Name>.v<N>.avsc``; each version gets :func:`stable_id`."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or schemas_dir()
        self._by_id: dict[int, SchemaVersion] = {}
        self._latest: dict[str, SchemaVersion] = {}
        self._versions: dict[str, list[SchemaVersion]] = {}
        for path in sorted(self.directory.glob("*.avsc")):
            m = _FILE.match(path.name)
            if not m:
                raise ValueError(f"{path.name}: schema files are named <Name>.v<N>.avsc")
            name, version = m["name"], int(m["version"])
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("name") != name:
                raise ValueError(f"{path.name}: the record is named {raw.get('name')!r}, not {name!r}")
            sv = SchemaVersion(name, version, stable_id(name, version), fastavro.parse_schema(raw), raw)
            if sv.schema_id in self._by_id:
                raise ValueError(f"{path.name}: schema id collision with {self._by_id[sv.schema_id]}")
            self._by_id[sv.schema_id] = sv
            self._versions.setdefault(name, []).append(sv)
        for name, versions in self._versions.items():
            versions.sort(key=lambda v: v.version)
            self._latest[name] = versions[-1]

    def latest(self, name: str) -> SchemaVersion:
        try:
            return self._latest[name]
        except KeyError:
            raise KeyError(f"no schema named {name!r} in {self.directory}") from None

    def by_id(self, schema_id: int) -> SchemaVersion:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise CodecError("schema-inconnu", f"schema id {schema_id} is not registered") from None

    def versions(self, name: str) -> list[SchemaVersion]:
        return list(self._versions.get(name, []))

    def names(self) -> list[str]:
        return sorted(self._latest)


class AvroCodec:
    """Encode with the latest version of a schema; decode any registered version into the latest."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry or LocalSchemaRegistry()

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        sv = self.registry.latest(name)
        buf = io.BytesIO()
        buf.write(_HEADER.pack(MAGIC, sv.schema_id))
        fastavro.schemaless_writer(buf, sv.parsed, record)
        return buf.getvalue()

    async def connaitre(self, values: Iterable[bytes | None]) -> None:
        """Before decoding a batch: the schema ids of these values, fetched if the registry is a
        remote one (no request blocks the event loop then); nothing to do with local schemas."""
        connaitre = getattr(self.registry, "connaitre", None)
        if connaitre is not None:
            await connaitre({_HEADER.unpack_from(v)[1] for v in values if v and len(v) >= _HEADER.size})

    def decode(self, name: str, data: bytes | None) -> dict[str, Any]:
        if not data or len(data) < _HEADER.size:
            raise CodecError("wire-format", "the value is shorter than the 5-byte Confluent header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise CodecError("wire-format", f"the first byte is {magic}, not the magic byte 0")
        writer = self.registry.by_id(schema_id)
        reader = self.registry.latest(name)
        if writer.name != name:
            raise CodecError(
                "schema-inattendu", f"the value is a {writer.name}, this topic carries {name}"
            )
        try:
            return fastavro.schemaless_reader(  # type: ignore[return-value]
                io.BytesIO(data[_HEADER.size :]),
                writer.parsed,
                reader.parsed if reader is not writer else None,
            )
        except Exception as exc:  # fastavro raises many types on truncated/garbled bodies
            raise CodecError("avro-invalide", f"the Avro body cannot be read: {type(exc).__name__}") from exc
