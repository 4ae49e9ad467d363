"""The optional trace of a signalement (issue 21), on Apache Kafka: with OTEL_EXPORTER_OTLP_ENDPOINT
set, the gateway, the worker and the sink export by OTLP/HTTP spans of one trace, each the
child of the one before, carried in the records' Kafka headers; no NIR in any span. Unset, the
records carry no header at all."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from aiguillage import topics
from aiguillage.codec import AvroCodec
from aiguillage.domain import Source
from tests.conftest import EXEMPLES, nir_aleatoire
from tests.kafka_util import decode_local, read_topic
from tests.test_metriques import affectations, attendre, route_en_sql

pytestmark = pytest.mark.kafka


class Collecteur:
    """An OTLP/HTTP receiver (POST /v1/traces, protobuf) keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        collecteur = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for rs in request.resource_spans:
                    service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            collecteur.spans.append({
                                "service": service, "name": s.name, "trace": s.trace_id.hex(),
                                "id": s.span_id.hex(), "parent": s.parent_span_id.hex(),
                                "attributes": {a.key: a.value.string_value for a in s.attributes},
                            })
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def poster_cpam(hub, jetons, n: str) -> str:
    body = json.loads((EXEMPLES / "cpam.json").read_text(encoding="utf-8"))
    body["reference"] = f"CPAM31-{uuid.uuid4().hex[:10]}"
    body["assure"]["nir"] = n
    r = httpx.post(f"{hub.base_url}/v1/signalements/cpam", json=body, timeout=30, headers=jetons.entete("cpam"))
    assert r.status_code == 202, r.text
    return r.json()["signalement_id"]


def test_une_trace_du_gateway_au_sink(hub_factory, jetons, sqlite_url):
    collecteur = Collecteur()
    try:
        hub = hub_factory(sqlite_url, OTEL_EXPORTER_OTLP_ENDPOINT=collecteur.url, OTEL_BSP_SCHEDULE_DELAY="200")
        nirs = [nir_aleatoire() for _ in range(3)]
        sids = [poster_cpam(hub, jetons, n) for n in nirs]
        attendre(lambda: affectations(sqlite_url) >= 3, 180, "3 affectations in SQL")

        def chaine(sid: str) -> list[str] | None:
            """The span names from a sink span of ``sid`` back to the gateway's, parent by parent, once
            every span of that line has reached the collector (each process exports on its own
            schedule). Only the trace the gateway began counts: a later Affectation of ``sid`` (given
            from a waiting file when another case closed, say) is the journey of that other event."""
            mine = [s for s in collecteur.spans if s["attributes"].get("aiguillage.signalement_id") == sid]
            debut = next((s for s in mine if s["name"] == "gateway"), None)
            if debut is None:
                return None
            by_id = {s["id"]: s for s in mine if s["trace"] == debut["trace"]}
            for sink in (s for s in by_id.values() if s["name"] == "sink affectations"):
                names, span = [], sink
                while span is not None:
                    names.append(span["name"])
                    span = by_id.get(span["parent"])
                if names[-1] == "gateway":
                    assert debut["attributes"]["aiguillage.source"] == "cpam"
                    assert {by_id[i]["service"] for i in by_id} >= {"aiguillage-gateway", "aiguillage-worker",
                                                                     "aiguillage-sink-affectations"}
                    return names
            return None

        for sid in sids:
            names = attendre(lambda sid=sid: chaine(sid), 30, f"{sid}'s spans, from the sink's back to the gateway's")
            assert names[0] == "sink affectations" and "routage" in names, names
        text = json.dumps(collecteur.spans)
        for n in nirs:
            assert n not in text, "a NIR in a span"
    finally:
        collecteur.close()


def test_sans_otel_aucun_entete(hub_factory, jetons, sqlite_url, broker):
    hub = hub_factory(sqlite_url)
    sid = poster_cpam(hub, jetons, nir_aleatoire())
    attendre(lambda: route_en_sql(sqlite_url, sid), 180, "its affectation in SQL")  # (a new worker routes the shared broker's whole history first)
    codec = AvroCodec()
    for topic, schema in ((topics.entrants(Source.CPAM), "Signalement"), (topics.AFFECTATIONS, "Affectation")):
        records = read_topic(broker.bootstrap, topic)
        mine = [r for r in records if (decode_local(codec, schema, [r]) or [{}])[0].get("signalement_id") == sid]
        assert mine, f"no record of {sid} on {topic}"
        assert all(not r.headers for r in mine), [r.headers for r in mine]
