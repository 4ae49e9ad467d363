"""Which sink writes which topic (``aiguillage sink NAME``)."""

from __future__ import annotations

from sinks.affectations import AffectationsSink
from sinks.agregats import AgregatsSink
from sinks.audit import AuditSink
from sinks.base import Sink
from sinks.retours import RetoursSink
from sinks.suivis import SuivisSink

SINKS: dict[str, type[Sink]] = {
    "affectations": AffectationsSink,
    "suivis": SuivisSink,
    "agregats": AgregatsSink,
    "retours": RetoursSink,
    "audit": AuditSink,
}
