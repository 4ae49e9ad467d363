"""The sinks' SQL effects are idempotent and never move back, on SQLite and PostgreSQL alike
(the write side of each sink, without the Kafka loop: that one is in test_pannes.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from sinks import db
from sinks.registry import SINKS

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    db.upgrade(url)
    eng = db.make_engine(url)
    yield eng
    eng.dispose()


def ecrire(engine: sa.Engine, sink: str, rows: list[dict]) -> None:
    instance = SINKS[sink].__new__(SINKS[sink])  # write() needs no broker
    with engine.begin() as conn:
        instance.write(conn, [instance.row(r) for r in rows])


def lignes(engine: sa.Engine, table: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()]


def affectation(sid: str, sequence: int = 0, file: str = "31-SPS") -> dict:
    return {
        "signalement_id": sid, "sequence": sequence, "nature": "initiale", "source": "cpam",
        "source_ref": f"REF-{sid[:8]}", "nir_pseudonyme": "ab" * 32, "recu_le": T0, "departement": "31",
        "file": file, "equipe": None, "axe": "SPS", "priorite": 3, "assistant": None,
        "regle": "departement-de-la-commune", "config_version": "t", "explication": "parce que",
        "echeance_premier_contact": date(2026, 12, 3), "decide_le": T0,
    }


def retour(sid: str, statut: str, minutes: int) -> dict:
    return {
        "retour_id": str(uuid.uuid4()), "signalement_id": sid, "source": "cpam", "source_ref": "R",
        "statut": statut, "statut_precedent": None, "issue": None, "change_le": T0 + timedelta(minutes=minutes),
    }


def test_replayed_affectations_leave_one_row_each_and_a_later_decision_wins(engine):
    ids = [str(uuid.uuid4()) for _ in range(50)]
    batch = [affectation(s) for s in ids]
    ecrire(engine, "affectations", batch)
    ecrire(engine, "affectations", batch + [affectation(ids[0], sequence=1, file="31-PDP")])
    ecrire(engine, "affectations", [affectation(ids[0], sequence=0)])  # an old decision, replayed late
    rows = {r["signalement_id"]: r for r in lignes(engine, "affectations")}
    assert len(rows) == 50
    assert rows[ids[0]]["file"] == "31-PDP" and rows[ids[0]]["sequence"] == 1
    assert all(r["statut"] == "requested" for r in rows.values())


def test_statut_moves_forward_only_even_when_retours_arrive_out_of_order(engine):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    ecrire(engine, "affectations", [affectation(a)])
    ecrire(engine, "retours", [retour(a, "in-progress", 10)])
    ecrire(engine, "retours", [retour(a, "accepted", 5)])  # older, delivered late: ignored
    # A retour overtaking its affectation (another topic, another sink) is applied on arrival.
    ecrire(engine, "retours", [retour(b, "received", 1)])
    ecrire(engine, "affectations", [affectation(b)])
    rows = {r["signalement_id"]: r for r in lignes(engine, "affectations")}
    assert rows[a]["statut"] == "in-progress"
    assert rows[b]["statut"] == "received"
    assert len(lignes(engine, "retours")) == 3


def test_agregats_keep_the_latest_value_and_a_masked_one_is_null(engine):
    cle = "signalements|mois|2026-11|departement=31,source=cpam"
    base = {"cle": cle, "indicateur": "signalements", "periode_type": "mois", "periode": "2026-11",
            "dimensions": {"departement": "31", "source": "cpam"}, "masque": False}
    ecrire(engine, "agregats", [{**base, "valeur": 12.0, "maj_le": T0}])
    ecrire(engine, "agregats", [{**base, "valeur": None, "masque": True, "maj_le": T0 + timedelta(seconds=1)}])
    ecrire(engine, "agregats", [{**base, "valeur": 12.0, "maj_le": T0}])  # replay of the older value
    [row] = lignes(engine, "agregats")
    assert row["valeur"] is None and row["masque"]


def test_a_resent_suivi_is_the_same_row(engine):
    suivi = {"suivi_id": "asp-31/000123/1", "signalement_id": str(uuid.uuid4()), "type": "entretien",
             "survenu_le": T0, "assistant": "ass-31-01", "equipe": "31", "mode_entretien": "telephone",
             "preconisation": None, "issue": None, "reorientation_vers": None, "seances": None,
             "participants": None, "commentaire": None}
    ecrire(engine, "suivis", [suivi, suivi])
    ecrire(engine, "suivis", [suivi])
    assert [r["suivi_id"] for r in lignes(engine, "suivis")] == ["asp-31/000123/1"]
