"""The SQL side: tables, engine, upserts. SQLite by default, PostgreSQL in production.

Tables are created by Alembic migrations (``sinks/migrations``), never by
``create_all`` at run time, so SQLite and PostgreSQL evolve the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

metadata = MetaData()

affectations = Table(
    "affectations",
    metadata,
    Column("signalement_id", String(36), primary_key=True),
    Column("sequence", Integer, nullable=False),
    Column("nature", String(20), nullable=False),
    Column("source", String(20), nullable=False),
    Column("source_ref", String(100), nullable=False),
    Column("nir_pseudonyme", String(64), nullable=False, index=True),
    Column("recu_le", DateTime(timezone=True), nullable=False),
    Column("departement", String(3), nullable=False),
    Column("file", String(64), nullable=False, index=True),
    Column("equipe", String(64)),
    Column("axe", String(3), nullable=False),
    Column("priorite", Integer, nullable=False),
    Column("assistant", String(64)),
    Column("regle", String(64), nullable=False),
    Column("config_version", String(64), nullable=False),
    Column("explication", Text, nullable=False),
    Column("echeance_premier_contact", Date, nullable=False),
    Column("decide_le", DateTime(timezone=True), nullable=False),
    # Written by the retours sink only, and only forward in time (statut_change_le).
    Column("statut", String(20), nullable=False, server_default="requested"),
    Column("statut_change_le", DateTime(timezone=True)),
)

suivis = Table(
    "suivis",
    metadata,
    Column("suivi_id", String(100), primary_key=True),
    Column("signalement_id", String(36), index=True),
    Column("type", String(20), nullable=False),
    Column("survenu_le", DateTime(timezone=True), nullable=False),
    Column("assistant", String(64)),
    Column("equipe", String(64)),
    Column("mode_entretien", String(20)),
    Column("preconisation", String(30)),
    Column("issue", String(30)),
    Column("reorientation_vers", String(100)),
    Column("seances", Integer),
    Column("participants", Integer),
    Column("commentaire", Text),
)

agregats = Table(
    "agregats",
    metadata,
    Column("cle", String(500), primary_key=True),
    Column("indicateur", String(64), nullable=False, index=True),
    Column("periode_type", String(10), nullable=False),
    Column("periode", String(20), nullable=False),
    Column("dimensions", JSON, nullable=False),
    Column("valeur", Float),  # null when masked (statistical confidentiality)
    Column("masque", Boolean, nullable=False, server_default="0"),
    Column("maj_le", DateTime(timezone=True), nullable=False),
)

retours = Table(
    "retours",
    metadata,
    Column("retour_id", String(100), primary_key=True),
    Column("signalement_id", String(36), nullable=False, index=True),
    Column("source", String(20), nullable=False),
    Column("source_ref", String(100), nullable=False),
    Column("statut", String(20), nullable=False),
    Column("statut_precedent", String(20)),
    Column("issue", String(30)),
    Column("change_le", DateTime(timezone=True), nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("audit_id", String(36), primary_key=True),
    Column("qui", String(200), nullable=False, index=True),
    Column("role", String(500), nullable=False),
    Column("action", String(40), nullable=False, index=True),
    Column("signalements", Text, nullable=False),  # the ids, space-separated (searched with LIKE)
    Column("equipe", String(100)),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
)

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            # WAL: the read side answers while a sink writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # connect_timeout: an unreachable server must fail fast, so the sink's backoff loop decides.
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextlib.contextmanager
def _sqlite_lock(url: str) -> Iterator[None]:
    database = make_url(url).database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database to the latest schema (``aiguillage db upgrade``).

    Several processes (gateway, sinks) upgrade at start-up: a lock makes them take turns,
    so the first one migrates and the others find the database at head.
    """
    cfg = alembic_config(url)
    engine = create_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            with _sqlite_lock(url):
                command.upgrade(cfg, revision)
            return
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(745100)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def upsert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], key: str, newer: str | None = None
) -> None:
    """Insert or update ``rows`` keyed by ``key`` in one batched statement (executemany).

    With ``newer``, an older version never overwrites a newer one, so replays are harmless.
    """
    if not rows:
        return
    dialect = conn.dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = ins.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={c.name: ins.excluded[c.name] for c in table.columns if c.name != key and c.name in rows[0]},
        where=(ins.excluded[newer] >= table.c[newer]) if newer else None,
    )
    conn.execute(stmt, rows)
