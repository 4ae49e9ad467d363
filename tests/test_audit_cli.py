"""The audit sink's SQL side (idempotent, on SQLite and PostgreSQL) and ``aiguillage audit``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from aiguillage.auth.audit import Action, enregistrement
from aiguillage.cli import app
from tests.test_sinks_sql import ecrire, engine, lignes  # noqa: F401 - the engine fixture

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _trail() -> tuple[list[dict], str]:
    sid = str(uuid.uuid4())
    rows = [
        enregistrement("alice", "assistant:31-toulouse", Action.LIRE_FILES, [sid, str(uuid.uuid4())], None, T0),
        enregistrement("alice", "assistant:31-toulouse", Action.SUIVI, [sid], "31-toulouse", T0 + timedelta(hours=1)),
        enregistrement("bob", "responsable:territoire:31", Action.REAFFECTATION, [sid], "31-comminges",
                       T0 + timedelta(days=2)),
        enregistrement("cli:root", "operateur", Action.JETON_REVOCATION, (), "cpam-1a2b3c4d", T0 + timedelta(days=3)),
    ]
    return rows, sid


def test_the_audit_sink_writes_each_record_once(engine):  # noqa: F811
    rows, sid = _trail()
    ecrire(engine, "audit", rows)
    ecrire(engine, "audit", rows)  # a redelivery: the same rows
    got = {r["audit_id"]: r for r in lignes(engine, "audit")}
    assert len(got) == 4
    assert got[rows[1]["audit_id"]]["signalements"] == sid and got[rows[1]["audit_id"]]["equipe"] == "31-toulouse"


def test_an_audit_record_holds_ids_only():
    r = enregistrement("alice", "assistant:x", Action.SUIVI, [], "loyer impayé, voir assurée")
    assert r["equipe"] is None  # what is not an id is not kept
    with pytest.raises(ValueError):
        enregistrement("alice", "assistant:x", Action.SUIVI, ["275013155512368"])  # not a signalement id


def test_aiguillage_audit_lists_with_filters(sqlite_url, monkeypatch):
    from sinks import db

    db.upgrade(sqlite_url)
    eng = db.make_engine(sqlite_url)
    rows, sid = _trail()
    ecrire(eng, "audit", rows)
    eng.dispose()
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("AIGUILLAGE_BROKER", "kafka://127.0.0.1:1")  # not looking for a running up

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, ["audit", *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "4 access(es)" in run()
    out = run("--qui", "alice")
    assert "2 access(es)" in out and "lire-files" in out and "(+1)" in out
    assert "1 access(es)" in run("--action", "reaffectation")
    assert "3 access(es)" in run("--signalement", sid)
    assert "2 access(es)" in run("--depuis", "2026-12-02")
    assert CliRunner().invoke(app, ["audit", "--action", "danser"]).exit_code == 2
