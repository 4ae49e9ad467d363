"""The SPST's FHIR loop closure without a broker: the Task of each hub status (Gravity's
referral states), the same Task on ``retours.spst``, and ``/fhir`` on the tables the sinks write."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.task import Task

from aiguillage.config import Settings
from aiguillage.domain import signalement_id
from aiguillage.fhir.tache import tache
from aiguillage.http import fhir
from aiguillage.routing import cycle
from aiguillage.routing.affectation import orienter
from aiguillage.routing.config_file import charger_texte
from sinks import db
from tests.routing_builders import RECU_LE, config_3_equipes, sig

T = RECU_LE + timedelta(hours=1)
MOTEUR = charger_texte(config_3_equipes())


@pytest.mark.parametrize(("statut", "file", "equipe", "attendu", "raison"), [
    ("requested", "31-a-PDP", "31-a", "requested", None),
    ("requested", "31-recueil-consentement", "31-a", "on-hold", "consentement-a-recueillir"),
    ("requested", "hors-territoire", None, "on-hold", "hors-territoire"),
    ("received", "31-a-SPS", "31-a", "received", None),
    ("accepted", "31-recueil-consentement", "31-a", "accepted", None),
    ("in-progress", "31-a-PDP", "31-a", "in-progress", None),
    ("completed", "31-a-PDP", "31-a", "completed", None),
    ("rejected", "31-a-PDP", "31-a", "rejected", "refus"),
    ("cancelled", "31-a-PDP", "31-a", "cancelled", "annulation"),
])
def test_each_hub_status_is_a_gravity_task_status(statut, file, equipe, attendu, raison):
    t = tache(signalement_id=signalement_id("spst", "R"), source_ref="R", statut=statut, equipe=equipe, file=file,
              change_le=T, issue="maintien-poste" if statut == "completed" else None)
    Task.model_validate(t)
    assert t["status"] == attendu and t["basedOn"][0]["reference"] == "ServiceRequest/R"
    assert (t.get("statusReason") or {}).get("coding", [{}])[0].get("code") == raison
    if equipe:
        assert t["owner"]["identifier"]["value"] == equipe and "ass" not in json.dumps(t["owner"])
    if statut == "completed":
        assert t["businessStatus"]["coding"][0]["code"] == "maintien-poste"


def test_an_spst_retour_carries_the_same_task_another_partners_none():
    for source, avec in (("spst", True), ("cpam", False)):
        a = orienter(MOTEUR, sig("R9", source=source), T).affectation
        (r,) = cycle.sur_affectation(None, a, MOTEUR.equipes, MOTEUR.version, T).sorties
        assert isinstance(r, cycle.PublierRetour)
        if not avec:
            assert r.retour["fhir_task"] is None
            continue
        t = json.loads(r.retour["fhir_task"])
        assert t == tache(signalement_id=a.signalement_id, source_ref="R9", statut="requested", equipe=a.equipe,
                          file=a.file, change_le=T)


def test_an_unknown_consent_makes_an_on_hold_task_on_retours_spst():
    a = orienter(MOTEUR, sig("R10", source="spst", consentement=None), T).affectation
    (r,) = cycle.sur_affectation(None, a, MOTEUR.equipes, MOTEUR.version, T).sorties
    t = json.loads(r.retour["fhir_task"])
    assert a.regle == "consentement-manquant" and t["status"] == "on-hold"
    assert t["statusReason"]["coding"][0]["code"] == "consentement-a-recueillir"


@pytest.fixture
def client(tmp_path, jetons):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    db.upgrade(url)
    engine = sa.create_engine(url)
    sid = signalement_id("spst", "SR-1")
    autre = signalement_id("cpam", "SR-1")
    row = {"sequence": 0, "nature": "initiale", "source_ref": "SR-1", "nir_pseudonyme": "0" * 64, "recu_le": T,
           "departement": "31", "file": "31-a-PDP", "equipe": "31-a", "axe": "PDP", "priorite": 2,
           "assistant": "31-a.ass1", "regle": "spst", "config_version": "x", "explication": "…",
           "echeance_premier_contact": T.date(), "decide_le": T}
    with engine.begin() as conn:
        conn.execute(db.affectations.insert(), [{**row, "signalement_id": sid, "source": "spst", "statut": "completed",
                                                 "statut_change_le": T},
                                                {**row, "signalement_id": autre, "source": "cpam", "statut": "requested",
                                                 "statut_change_le": None}])
        conn.execute(db.retours.insert(), [{"retour_id": "r1", "signalement_id": sid, "source": "spst",
                                            "source_ref": "SR-1", "statut": "completed", "statut_precedent": "in-progress",
                                            "issue": "maintien-poste", "change_le": T}])
    app = FastAPI()
    app.include_router(fhir.router(Settings(tokens_file=jetons.path), engine))
    yield TestClient(app), sid, autre
    engine.dispose()


def test_fhir_endpoints_serve_the_spst_its_own_tasks_only(client, jetons):
    c, sid, autre = client
    spst = jetons.entete("spst")
    CapabilityStatement.model_validate(c.get("/fhir/metadata").json())
    r = c.get("/fhir/Task", params={"based-on": "ServiceRequest/SR-1"}, headers=spst)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    b = Bundle.model_validate(r.json())
    assert b.type == "searchset" and b.total == 1 and b.entry[0].resource.id == sid
    assert b.entry[0].resource.status == "completed" and b.entry[0].resource.businessStatus.coding[0].code == "maintien-poste"
    assert c.get(f"/fhir/Task/{sid}", headers=spst).json()["id"] == sid
    # the CPAM's signalement of the same reference is not the SPST's
    assert c.get(f"/fhir/Task/{autre}", headers=spst).status_code == 404
    for status, headers in ((401, {}), (401, {"Authorization": "Bearer aig_nope"}), (403, jetons.entete("cpam"))):
        r = c.get(f"/fhir/Task/{sid}", headers=headers)
        assert r.status_code == status and OperationOutcome.model_validate(r.json()).issue[0].severity == "error"
    r = c.get("/fhir/Task", headers=spst)
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
    assert c.get("/fhir/Patient", headers=spst).status_code == 404


def test_a_time_from_sqlite_without_zone_is_utc():
    t = tache(signalement_id=signalement_id("spst", "Z"), source_ref="Z", statut="requested", equipe="31-a",
              file="31-a-SPS", change_le=datetime(2026, 12, 1, 10, 0))
    assert t["lastModified"] == tache(signalement_id=signalement_id("spst", "Z"), source_ref="Z", statut="requested",
                                      equipe="31-a", file="31-a-SPS",
                                      change_le=datetime(2026, 12, 1, 10, 0, tzinfo=UTC))["lastModified"]
