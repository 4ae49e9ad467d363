"""How the CLI finds a running ``aiguillage up``: the file it keeps in its data directory.

``up`` writes ``<data>/up.json`` (its pid, its broker, database, token file, routing file and
children) when it is up, and removes it when it stops. A command run without
``AIGUILLAGE_BROKER`` (``ingest``, ``dlq``, ``demo``, ``routing explain``) reads it from
``AIGUILLAGE_DATA_DIR`` (``var`` by default, as ``up``'s own default), checks the pid still runs
``up``, and takes its settings, and the development keys ``up`` keeps beside it when the
environment has none. An explicit environment always wins.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import SecretStr

from aiguillage.config import Settings

STATE_FILE = "up.json"
KEYS_FILE = "dev-keys.json"


@dataclass
class RunningUp:
    pid: int
    data_dir: str
    broker: str
    embedded: bool
    http: str
    database_url: str
    tokens_file: str
    routing_file: str | None = None
    children: dict[str, int] = field(default_factory=dict)

    def save(self) -> None:
        path = Path(self.data_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)  # a reader never sees half a file

    def forget(self) -> None:
        (Path(self.data_dir) / STATE_FILE).unlink(missing_ok=True)


def _alive_up(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"aiguillage" in part for part in cmdline) and b"up" in cmdline


def find(data_dir: Path) -> RunningUp | None:
    """The ``up`` running on ``data_dir``, or None (no file, or its process is gone)."""
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text())
        running = RunningUp(**raw)
    except (OSError, ValueError, TypeError):
        return None
    return running if _alive_up(running.pid) else None


def completed(settings: Settings) -> Settings:
    """``settings``, completed from a running ``up`` when they name no broker."""
    if settings.broker:
        return settings
    running = find(settings.data_dir)
    if running is None:
        return settings
    update: dict[str, object] = {"broker": running.broker, "embedded_broker": running.embedded}
    if "AIGUILLAGE_DATABASE_URL" not in os.environ:
        update["database_url"] = running.database_url
    if settings.tokens_file is None:
        update["tokens_file"] = Path(running.tokens_file)
    if settings.routing_file is None and running.routing_file:
        update["routing_file"] = Path(running.routing_file)
    keys_path = Path(running.data_dir) / KEYS_FILE
    if keys_path.exists():
        keys = json.loads(keys_path.read_text())
        for var, name in (("AIGUILLAGE_PSEUDONYM_KEY", "pseudonym_key"), ("AIGUILLAGE_DLQ_KEY", "dlq_key")):
            if getattr(settings, name) is None and var in keys:
                update[name] = SecretStr(keys[var])
    return settings.model_copy(update=update)
