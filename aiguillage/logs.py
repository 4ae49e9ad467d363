"""The hub's log lines: text for a person at a terminal (the default), one JSON object a line
for a machine (``AIGUILLAGE_LOG_FORMAT=json``).

A JSON line holds the time, the level, the process (``gateway``, ``worker``, ``sink-affectations``
...), the logger, the message and, where the line is about one record, the signalement id and the
record's topic, partition and offset (:func:`record`, a context the agents and sinks enter per
record). Never the NIR: the hub logs none, and :class:`SansNir` masks anything shaped like one
with a valid key, in the message and its arguments, whatever the format, should a library echo a
payload.
"""

from __future__ import annotations

import logging
import logging.config
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from aiguillage import nir

LogFormat = Literal["text", "json"]
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A NIR as people write it: 13 characters (2A/2B for Corsica) and its 2-digit key, maybe spaced.
_NIR_LIKE = re.compile(r"(?<![\dA-Za-z])[1-478](?:[\s.\-]?\d){4}[\s.\-]?(?:\d{2}|2[AB])(?:[\s.\-]?\d){6}[\s.\-]?\d{2}(?!\d)")
MASQUE = "[nir masqué]"

_process = ["aiguillage"]  # one per process, every thread (Faust's consumer thread too)
_record: ContextVar[dict[str, Any] | None] = ContextVar("aiguillage_record", default=None)


def _champs(signalement_id: str | None, topic: str | None, partition: int | None,
            offset: int | None) -> dict[str, Any]:
    return {k: v for k, v in (("signalement_id", signalement_id), ("topic", topic),
                              ("partition", partition), ("offset", offset)) if v is not None}


def sur_record(*, signalement_id: str | None = None, topic: str | None = None, partition: int | None = None,
               offset: int | None = None) -> None:
    """The lines this task logs from now on name this record (JSON fields ``signalement_id``,
    ``topic``, ``partition``, ``offset``): an agent calls it per record, in its own task."""
    _record.set(_champs(signalement_id, topic, partition, offset))


def avec_id(signalement_id: str) -> None:
    """The current record's signalement id, once it is decoded."""
    _record.set({**(_record.get() or {}), "signalement_id": signalement_id})


@contextmanager
def record(*, signalement_id: str | None = None, topic: str | None = None, partition: int | None = None,
           offset: int | None = None) -> Iterator[None]:
    """:func:`sur_record` for the lines logged inside only."""
    token = _record.set(_champs(signalement_id, topic, partition, offset))
    try:
        yield
    finally:
        _record.reset(token)


def masquer(text: str) -> str:
    """``text`` with each NIR-shaped run whose key is right replaced by :data:`MASQUE`."""
    def _one(m: re.Match[str]) -> str:
        try:
            nir.valider(m.group(0))
        except ValueError:
            return m.group(0)
        return MASQUE
    return _NIR_LIKE.sub(_one, text)


class SansNir(logging.Filter):
    """Masks NIRs in the final message; adds the process and the current record's fields."""

    def filter(self, rec: logging.LogRecord) -> bool:
        message = rec.getMessage()
        masked = masquer(message)
        if masked != message:
            rec.msg, rec.args = masked, None
        if rec.exc_info and not rec.exc_text:
            rec.exc_text = masquer(logging.Formatter().formatException(rec.exc_info))
        elif rec.exc_text:
            rec.exc_text = masquer(rec.exc_text)
        rec.process_name = _process[0]
        for key, value in (_record.get() or {}).items():
            if not hasattr(rec, key):  # a line's own ``extra`` wins
                setattr(rec, key, value)
        return True


def config(level: str, fmt: LogFormat, process: str) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dictionary (also what Faust's worker is given)."""
    _process[0] = process
    formatter: dict[str, Any] = {"format": TEXT}
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(process_name)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "process_name": "process", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
            "json_ensure_ascii": False,
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"sans_nir": {"()": SansNir}},
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "filters": ["sans_nir"], "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["default"]},
        # uvicorn's own loggers log through ours (its access log is off).
        "loggers": {name: {"handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def configure(level: str, fmt: LogFormat, process: str) -> None:
    logging.config.dictConfig(config(level, fmt, process))
