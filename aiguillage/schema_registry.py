"""A Confluent-compatible Schema Registry (Confluent's, Karapace) behind the codec's protocol.

Used when ``AIGUILLAGE_SCHEMA_REGISTRY=http://host:8081`` is set. At start-up every
schema of ``schemas/avro/`` is registered under the TopicNameStrategy subject of
each topic that carries it (``<topic>-value``, from :func:`aiguillage.topics.hub_topics`);
a version the registry does not hold yet is first checked against the subject's
latest, and the process refuses to start if the registry says it is incompatible.
Ids are the registry's, cached; an unknown id met on the wire (a partner producing
with a newer schema) is fetched once with ``GET /schemas/ids/{id}``; that call is synchronous
(stdlib HTTP, a few ms, once per unknown id), so it briefly holds the caller's event loop.

Only the REST subset below is used; it was tested against an in-process fake
(tests/test_schema_registry.py), not against a real registry.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import fastavro

from aiguillage.codec import AvroCodec, CodecError, LocalSchemaRegistry, SchemaVersion
from aiguillage.config import Settings

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistryError(RuntimeError):
    """The registry cannot be used: unreachable, or it answered something unexpected."""


class SchemaIncompatible(SchemaRegistryError):
    """A local schema breaks the compatibility rule of its subject: the hub must not start."""


class _NotFound(Exception):
    pass


def subjects(local: LocalSchemaRegistry) -> dict[str, list[str]]:
    """Schema name -> its subjects: ``<topic>-value`` per topic carrying it (TopicNameStrategy);
    a schema no topic carries is registered under its record's full name."""
    from aiguillage.topics import hub_topics

    out: dict[str, list[str]] = {name: [] for name in local.names()}
    for topic in hub_topics():
        if topic.value_schema in out:
            out[topic.value_schema].append(f"{topic.name}-value")
    for name, subs in out.items():
        if not subs:
            raw = local.latest(name).raw
            subs.append(f"{raw['namespace']}.{name}" if raw.get("namespace") else name)
    return out


class ConfluentSchemaRegistry:
    """Implements :class:`aiguillage.codec.SchemaRegistry` over the registry's REST API."""

    def __init__(self, url: str, local: LocalSchemaRegistry | None = None, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SchemaRegistryError(f"AIGUILLAGE_SCHEMA_REGISTRY must be an http(s) URL, not {parts.scheme!r}")
        self._auth: str | None = None
        if parts.username:  # http://user:password@host: basic auth, as Confluent and Karapace take it
            creds = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(creds.encode()).decode()
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.local = local or LocalSchemaRegistry()
        self.timeout = timeout
        self._latest: dict[str, SchemaVersion] = {}
        self._by_id: dict[int, SchemaVersion] = {}

    # -- the codec's protocol -------------------------------------------------------------

    def latest(self, name: str) -> SchemaVersion:
        try:
            return self._latest[name]
        except KeyError:
            raise KeyError(f"no schema named {name!r} registered (was register_all() called?)") from None

    def by_id(self, schema_id: int) -> SchemaVersion:
        cached = self._by_id.get(schema_id)
        if cached is not None:
            return cached
        try:
            answer = self._call("GET", f"/schemas/ids/{schema_id}")
        except _NotFound:
            raise CodecError("schema-inconnu", f"schema id {schema_id} is not in the registry") from None
        raw = json.loads(answer["schema"])
        name = raw.get("name", "?").rsplit(".", 1)[-1] if isinstance(raw, dict) else "?"
        sv = SchemaVersion(name, self._local_version(name, raw), schema_id, fastavro.parse_schema(raw), raw)
        self._by_id[schema_id] = sv
        return sv

    # -- start-up ---------------------------------------------------------------------------

    def register_all(self) -> ConfluentSchemaRegistry:
        """Register every local schema version under its subjects, oldest first; refuse
        (SchemaIncompatible) a version the registry finds incompatible with its subject."""
        for name, subs in subjects(self.local).items():
            for sv in self.local.versions(name):
                for subject in subs:
                    schema_id = self._ensure(subject, sv)
                    registered = SchemaVersion(name, sv.version, schema_id, sv.parsed, sv.raw)
                    self._by_id[schema_id] = registered
                    self._latest[name] = registered
        return self

    def _ensure(self, subject: str, sv: SchemaVersion) -> int:
        body = {"schema": json.dumps(sv.raw, separators=(",", ":"))}
        quoted = urllib.parse.quote(subject, safe="")
        try:  # already there (a restart, another replica): its id, no check needed
            return int(self._call("POST", f"/subjects/{quoted}", body)["id"])
        except _NotFound:
            pass
        try:
            verdict = self._call(
                "POST", f"/compatibility/subjects/{quoted}/versions/latest?verbose=true", body
            )
        except _NotFound:
            verdict = {"is_compatible": True}  # a new subject: nothing to be compatible with
        if not verdict.get("is_compatible", False):
            why = "; ".join(str(m) for m in verdict.get("messages") or []) or "no detail given"
            raise SchemaIncompatible(
                f"schemas/avro/{sv.name}.v{sv.version}.avsc is not compatible with the latest "
                f"version of subject {subject!r} in the Schema Registry at {self.base}: {why}. "
                "Refusing to start: make the change BACKWARD compatible (new fields need a default)."
            )
        return int(self._call("POST", f"/subjects/{quoted}/versions", body)["id"])

    def _local_version(self, name: str, raw: Any) -> int:
        for sv in self.local.versions(name):
            if sv.raw == raw:
                return sv.version
        return 0  # a version this hub does not ship (a newer partner schema)

    # -- HTTP ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, attempts: int = 3) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE}
        if self._auth:
            headers["Authorization"] = self._auth
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        for attempt in range(attempts):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    return json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    raise _NotFound from None
                if exc.code < 500 or attempt == attempts - 1:
                    detail = exc.read().decode(errors="replace")[:300]
                    raise SchemaRegistryError(
                        f"Schema Registry {method} {path.split('?')[0]} answered {exc.code}: {detail}"
                    ) from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt == attempts - 1:
                    raise SchemaRegistryError(
                        f"Schema Registry at {self.base} does not answer: {exc}"
                    ) from None
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")


def make_codec(settings: Settings, local_dir: Path | None = None) -> AvroCodec:
    """The codec every process uses: local schemas, or the registry's ids when one is configured."""
    local = LocalSchemaRegistry(local_dir)
    if not settings.schema_registry:
        return AvroCodec(local)
    return AvroCodec(ConfluentSchemaRegistry(settings.schema_registry, local).register_all())
