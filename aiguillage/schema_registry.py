"""A Confluent-compatible Schema Registry (Confluent's, Karapace) behind the codec's protocol.

Used when ``AIGUILLAGE_SCHEMA_REGISTRY=http://host:8081`` is set. At start-up every
schema of ``schemas/avro/`` is registered under the TopicNameStrategy subject of
each topic that carries it (``<topic>-value``, from :func:`aiguillage.topics.hub_topics`);
a version the registry does not hold yet is first checked against the subject's
latest, and the process refuses to start if the registry says it is incompatible.
Ids are the registry's, cached. An id met on the wire that this process does not know (a
partner producing with a newer schema) is fetched with ``GET /schemas/ids/{id}`` before the
batch is decoded, asynchronously (:meth:`AvroCodec.connaitre`): nothing blocks an event loop.
An id the registry does not know is remembered as such (``INCONNU_TTL``), so a flood of records
with a bogus id costs one request, not one each; an id the registry could not be asked about is
retried after ``INDISPONIBLE_TTL``. Requests are retried with a backoff (tenacity).

Only the REST subset below is used; tests/test_schema_registry.py runs it against a real
Apicurio Registry 3.0.9 (its Confluent-compatible API), not against Confluent's or Karapace.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import fastavro
import httpx
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from aiguillage.codec import AvroCodec, CodecError, LocalSchemaRegistry, SchemaVersion
from aiguillage.config import Settings

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistryError(RuntimeError):
    """The registry cannot be used: unreachable, or it answered something unexpected."""


class SchemaIncompatible(SchemaRegistryError):
    """A local schema breaks the compatibility rule of its subject: the hub must not start."""


class _NotFound(Exception):
    pass


class _Retryable(SchemaRegistryError):
    """A 5xx or a transport error: worth asking again (and, once the retries are spent, the error)."""


INCONNU_TTL = 300.0  # seconds an id the registry said it does not know is not asked about again
INDISPONIBLE_TTL = 5.0  # seconds before an id the registry could not be asked about is asked again
_RETRY: dict[str, Any] = {"retry": retry_if_exception_type(_Retryable), "stop": stop_after_attempt(3),
                          "wait": wait_exponential(multiplier=0.5, max=2), "reraise": True}


class _Conflict(SchemaRegistryError):
    """409: the registry refused a registration (a compatibility rule); ``reason`` is its message."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(text)
        self.reason = reason


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
        self._auth: tuple[str, str] | None = None
        if parts.username:  # http://user:password@host: basic auth, as Confluent and Karapace take it
            self._auth = (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.local = local or LocalSchemaRegistry()
        self.timeout = timeout
        self._latest: dict[str, SchemaVersion] = {}
        self._by_id: dict[int, SchemaVersion] = {}
        self._pas_la: dict[int, tuple[float, str]] = {}  # id -> (until, code): unknown, or not asked about
        self._client: httpx.AsyncClient | None = None

    # -- the codec's protocol -------------------------------------------------------------

    def latest(self, name: str) -> SchemaVersion:
        try:
            return self._latest[name]
        except KeyError:
            raise KeyError(f"no schema named {name!r} registered (was register_all() called?)") from None

    def by_id(self, schema_id: int) -> SchemaVersion:
        """From the cache; an id not fetched yet is fetched here, synchronously (the CLI tools;
        the agents and sinks fetch theirs beforehand with :meth:`connaitre`)."""
        cached = self._by_id.get(schema_id)
        if cached is not None:
            return cached
        self._refus(schema_id)
        try:
            return self._retenir(schema_id, self._call("GET", f"/schemas/ids/{schema_id}"))
        except _NotFound:
            self._pas_la[schema_id] = (time.monotonic() + INCONNU_TTL, "schema-inconnu")
        except SchemaRegistryError:
            self._pas_la[schema_id] = (time.monotonic() + INDISPONIBLE_TTL, "registre-indisponible")
        self._refus(schema_id)
        raise AssertionError("unreachable")

    async def connaitre(self, ids: Iterable[int]) -> None:
        """Fetch the ids not known yet, without blocking the event loop; remember those the
        registry does not know, or could not be asked about."""
        for schema_id in set(ids) - self._by_id.keys():
            if schema_id in self._pas_la and self._pas_la[schema_id][0] > time.monotonic():
                continue
            try:
                self._retenir(schema_id, await self._acall("GET", f"/schemas/ids/{schema_id}"))
            except _NotFound:
                self._pas_la[schema_id] = (time.monotonic() + INCONNU_TTL, "schema-inconnu")
            except SchemaRegistryError:
                self._pas_la[schema_id] = (time.monotonic() + INDISPONIBLE_TTL, "registre-indisponible")

    def _refus(self, schema_id: int) -> None:
        until, code = self._pas_la.get(schema_id, (0.0, ""))
        if until > time.monotonic():
            why = "is not in the registry" if code == "schema-inconnu" else "could not be read: the registry does not answer"
            raise CodecError(code, f"schema id {schema_id} {why}")

    def _retenir(self, schema_id: int, answer: Any) -> SchemaVersion:
        raw = json.loads(answer["schema"])
        name = raw.get("name", "?").rsplit(".", 1)[-1] if isinstance(raw, dict) else "?"
        sv = SchemaVersion(name, self._local_version(name, raw), schema_id, fastavro.parse_schema(raw), raw)
        self._by_id[schema_id] = sv
        self._pas_la.pop(schema_id, None)
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
            why = "; ".join(str(m) for m in verdict.get("messages") or [])
            if not why:
                # Apicurio (3.0) ignores verbose=true and gives no messages; the same rule refuses the
                # registration with a 409 that names the fields, so ask for it that way.
                try:
                    return int(self._call("POST", f"/subjects/{quoted}/versions", body)["id"])
                except _Conflict as refusal:  # the expected answer; an id means the rule changed meanwhile
                    why = refusal.reason or "no detail given"
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

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request, tried again on a 5xx or a transport error (start-up, and the CLI)."""
        with httpx.Client(timeout=self.timeout, auth=self._auth) as client:
            for attempt in Retrying(**_RETRY):
                with attempt:
                    try:
                        resp = client.request(method, self.base + path, json=body, headers=self._headers())
                    except httpx.TransportError as exc:
                        raise _Retryable(f"Schema Registry at {self.base} does not answer: {exc}") from exc
                    return self._answer(method, path, resp)
        raise AssertionError("unreachable")

    async def _acall(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, auth=self._auth)
        client = self._client
        async for attempt in AsyncRetrying(**_RETRY):
            with attempt:
                try:
                    resp = await client.request(method, self.base + path, json=body, headers=self._headers())
                except httpx.TransportError as exc:
                    raise _Retryable(f"Schema Registry at {self.base} does not answer: {exc}") from exc
                return self._answer(method, path, resp)
        raise AssertionError("unreachable")

    @staticmethod
    def _headers() -> dict[str, str]:
        return {"Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE}

    @staticmethod
    def _answer(method: str, path: str, resp: httpx.Response) -> Any:
        """The JSON answer, or the error it means (404, 409, a 5xx to retry, another 4xx)."""
        where = f"Schema Registry {method} {path.split('?')[0]}"
        if resp.status_code == 404:
            raise _NotFound
        if resp.status_code == 409:
            reason = _message(resp.content)
            raise _Conflict(f"{where} answered 409: {reason}", reason)
        if resp.status_code >= 500:
            raise _Retryable(f"{where} answered {resp.status_code}: {resp.text[:300]}")
        if resp.status_code >= 400:
            raise SchemaRegistryError(f"{where} answered {resp.status_code}: {resp.text[:300]}")
        return resp.json() if resp.content else None


def _message(payload: bytes) -> str:
    """The ``message`` of a registry's JSON error body, else the body itself (shortened)."""
    text = payload.decode(errors="replace")
    try:
        return str(json.loads(text)["message"])
    except (ValueError, KeyError, TypeError):
        return text[:300]


def make_codec(settings: Settings, local_dir: Path | None = None) -> AvroCodec:
    """The codec every process uses: local schemas, or the registry's ids when one is configured."""
    local = LocalSchemaRegistry(local_dir)
    if not settings.schema_registry:
        return AvroCodec(local)
    return AvroCodec(ConfluentSchemaRegistry(settings.schema_registry, local).register_all())
