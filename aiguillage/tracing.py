"""An optional OpenTelemetry trace of each signalement, from the gateway to the sink.

On only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the OTLP/HTTP exporter reads it, and the
other ``OTEL_*`` variables): each process then exports its spans as ``aiguillage-<process>``,
and the W3C trace context travels with the signalement in the Kafka headers (``traceparent``)
of its records: gateway -> ingress topic -> routing -> (the team's message, as a field) -> team
-> ``affectations`` -> sink. Unset, nothing changes: no provider, no headers, no cost but a test
of :data:`ACTIF`.

Span attributes are the signalement id, the source, the team and the rule: never the NIR, never
free text.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace

ACTIF = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
Headers = list[tuple[str, bytes]]
_tracer = trace.get_tracer("aiguillage")


def configurer(process: str) -> None:
    """Export this process's spans by OTLP/HTTP, when tracing is on."""
    if not ACTIF:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"aiguillage-{process}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # what is batched is sent before the process ends


def entetes(span: Any = None) -> Headers | None:
    """The Kafka headers carrying ``span``'s context (the current span's by default); None when off."""
    if not ACTIF:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span) if span is not None else None)
    return [(k, v.encode()) for k, v in carrier.items()] or None


def texte(span: Any) -> str | None:
    """``span``'s context as a ``traceparent`` string, for a message that carries it as a field."""
    if not ACTIF or span is None:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


def _contexte(headers: Sequence[tuple[str, bytes]] | Any = None, traceparent: str | None = None) -> Any:
    if traceparent:
        return propagate.extract({"traceparent": traceparent})
    if not headers:
        return None
    items = headers.items() if hasattr(headers, "items") else headers
    return propagate.extract({k: v.decode("latin-1") if isinstance(v, bytes) else v for k, v in items})


def debut(nom: str, headers: Any = None, traceparent: str | None = None, **attributs: Any) -> Any:
    """A span started as the child of the context the headers (or ``traceparent``) carry; the
    caller ends it (``span.end()``). None when off."""
    if not ACTIF:
        return None
    span = _tracer.start_span(nom, context=_contexte(headers, traceparent), kind=trace.SpanKind.CONSUMER)
    for k, v in attributs.items():
        if v is not None:
            span.set_attribute(f"aiguillage.{k}", v)
    return span


def fin(span: Any) -> None:
    if span is not None:
        span.end()


@contextmanager
def etape(nom: str, **attributs: Any) -> Iterator[Any]:
    """A span, current inside, for work that starts here (the gateway's answer to a partner)."""
    if not ACTIF:
        yield None
        return
    with _tracer.start_as_current_span(nom, kind=trace.SpanKind.SERVER) as span:
        for k, v in attributs.items():
            if v is not None:
                span.set_attribute(f"aiguillage.{k}", v)
        yield span

