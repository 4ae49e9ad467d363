"""An in-process stand-in for a Confluent Schema Registry: the REST subset the hub uses.

- ``POST /subjects/{subject}``                                   look a schema up in a subject
- ``POST /subjects/{subject}/versions``                          register (idempotent; ids global)
- ``POST /compatibility/subjects/{subject}/versions/latest``     BACKWARD check against the latest
- ``GET  /schemas/ids/{id}``                                     a schema by id

The compatibility check is a simplification of Avro's resolution rules, enough for
the tests: a reader (new) field must exist in the writer (old) or have a default,
and a field present in both must keep the same type.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


def _canon(schema: str) -> str:
    return json.dumps(json.loads(schema), sort_keys=True, separators=(",", ":"))


def backward_problems(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    old_fields = {f["name"]: f for f in old.get("fields", [])}
    problems = []
    for field in new.get("fields", []):
        before = old_fields.get(field["name"])
        if before is None and "default" not in field:
            problems.append(f"READER_FIELD_MISSING_DEFAULT_VALUE, location:/fields/{field['name']}")
        elif before is not None and json.dumps(before["type"], sort_keys=True) != json.dumps(field["type"], sort_keys=True):
            problems.append(f"TYPE_MISMATCH, location:/fields/{field['name']}/type")
    return problems


class FakeSchemaRegistry:
    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}  # id -> schema string
        self.subjects: dict[str, list[int]] = {}  # subject -> ids, oldest first
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def register(self, subject: str, schema: str) -> int:
        with self._lock:
            canon = _canon(schema)
            schema_id = next((i for i, s in self.schemas.items() if _canon(s) == canon), None)
            if schema_id is None:
                schema_id = len(self.schemas) + 100
                self.schemas[schema_id] = schema
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id

    def _route(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        parts = [urllib.parse.unquote(p) for p in path.split("?")[0].strip("/").split("/")]
        not_found = (404, {"error_code": 40401, "message": "Subject not found."})
        if method == "GET" and parts[:2] == ["schemas", "ids"]:
            schema = self.schemas.get(int(parts[2]))
            return (200, {"schema": schema}) if schema else (404, {"error_code": 40403, "message": "Schema not found"})
        if method != "POST" or body is None:
            return 405, {"error_code": 405, "message": "Method not allowed"}
        if parts[0] == "subjects" and len(parts) == 2:
            ids = self.subjects.get(parts[1])
            if ids is None:
                return not_found
            canon = _canon(body["schema"])
            for version, schema_id in enumerate(ids, 1):
                if _canon(self.schemas[schema_id]) == canon:
                    return 200, {"subject": parts[1], "id": schema_id, "version": version, "schema": self.schemas[schema_id]}
            return 404, {"error_code": 40403, "message": "Schema not found"}
        if parts[0] == "subjects" and parts[2:] == ["versions"]:
            return 200, {"id": self.register(parts[1], body["schema"])}
        if parts[:2] == ["compatibility", "subjects"] and parts[3:] == ["versions", "latest"]:
            ids = self.subjects.get(parts[2])
            if not ids:
                return not_found
            problems = backward_problems(json.loads(body["schema"]), json.loads(self.schemas[ids[-1]]))
            return 200, {"is_compatible": not problems, "messages": problems}
        return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                registry.requests.append((method, self.path))
                status, payload = registry._route(method, self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def log_message(self, *args: object) -> None:
                pass

        return Handler
