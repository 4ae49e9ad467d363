"""The SPST in FHIR, end to end on Apache Kafka: FHIR R4 bodies written from the specification
are routed; faults come back as one OperationOutcome; one referral followed through prise en
charge, entretien and clôture, its Task read after each step with a FHIR client that is not
ours (fhirpy), the same Task on ``retours.spst``; and the librdkafka example producer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fhirpy import SyncFHIRClient

from aiguillage.domain import Source, signalement_id
from tests import fhir_corps as f
from tests.conftest import EXEMPLES, ROOT, nir_aleatoire
from tests.kafka_util import wait_for
from tests.test_partenaires_e2e import decoded, module_hub, wait_rows

pytestmark = pytest.mark.kafka
FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def hub(broker, cles, jetons, emetteur, tmp_path_factory):
    # the retours sink too (the Tasks), and staff tokens for the suivis
    yield from module_hub(broker, cles, jetons, tmp_path_factory.mktemp("spst-fhir"), "spst-fhir",
                          ("worker", "sink-affectations", "sink-retours", "gateway"), **emetteur.env())


def _nouvel_assure(doc: dict[str, Any]) -> dict[str, Any]:
    """Another assuré for each body: the same one would be routed to their case (référent unique)."""
    patients = [e["resource"] for e in doc.get("entry", [])] + doc.get("contained", [])
    for p in patients:
        if p.get("resourceType") == "Patient" and p["identifier"][0]["value"] == f.NIR_TOULOUSE:
            p["identifier"][0]["value"] = nir_aleatoire()
    return doc


def poster(hub, jetons, doc: dict[str, Any], token_of: str = "spst") -> httpx.Response:
    doc = _nouvel_assure(doc)
    return httpx.post(f"{hub.base_url}/v1/signalements/spst", content=f.corps(doc),
                      headers={**FHIR, **jetons.entete(token_of)}, timeout=15)


def ref(nom: str) -> str:
    return f"SPST-{nom}-{uuid.uuid4().hex[:6]}"


def test_fhir_bodies_from_the_specification_are_each_routed(hub, jetons):
    corps = {
        "bundle": f.bundle(ref("bundle")),
        "contenu-code-postal": f.contenu(ref("contenu")),
        "raison-texte": f.bundle(ref("texte"), f.consent("permit"), reason=f.TEXTE_SEUL),
        "consent-permit": f.bundle(ref("permit"), f.consent("permit")),
        "consent-deny": f.bundle(ref("deny"), f.consent("deny")),
    }
    ids = {}
    for nom, doc in corps.items():
        r = poster(hub, jetons, doc)
        assert r.status_code == 202, (nom, r.text)
        ids[nom] = r.json()["signalement_id"]
    rows = wait_rows(hub.database_url, set(ids.values()), timeout=120)
    files = {nom: rows[sid]["file"] for nom, sid in ids.items()}
    # No consent said, or a no: the consent is collected first; a Consent permit: the team's PDP file.
    assert files["bundle"] == files["contenu-code-postal"] == files["consent-deny"] == "31-recueil-consentement"
    # The SNOMED "Inaptitude au poste" read by its display; the text-only "fin de droits" by the SPST rule.
    assert files["consent-permit"] == "31-toulouse-PDP" and rows[ids["consent-permit"]]["regle"] == "inaptitude"
    assert files["raison-texte"] == "31-toulouse-PDP" and rows[ids["raison-texte"]]["regle"] == "spst"


def test_faults_come_back_as_one_operation_outcome(hub, jetons):
    faux = f.NIR_TOULOUSE[:13] + f"{(int(f.NIR_TOULOUSE[13:]) + 1) % 100:02d}"
    doc = f.bundle(ref("faux"), pat=f.patient(nir_=faux, gender="unknown"))
    doc["entry"][1]["resource"].pop("reasonCode")
    r = poster(hub, jetons, doc)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/fhir+json")
    oo = r.json()
    assert oo["resourceType"] == "OperationOutcome"
    codes = {i["expression"][0]: i["details"]["coding"][0]["code"] for i in oo["issue"]}
    assert codes == {"Patient.identifier": "nir-cle-invalide", "Patient.gender": "genre-invalide",
                     "ServiceRequest.reasonCode": "champ-manquant"}
    r = poster(hub, jetons, f.patient())
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "fhir-type-inattendu"


def test_one_referral_followed_through_its_tasks_with_fhirpy(hub, jetons, broker, emetteur):
    reference = ref("suivi")
    r = poster(hub, jetons, f.bundle(reference, f.consent("permit")))
    assert r.status_code == 202, r.text
    sid = r.json()["signalement_id"]
    wait_rows(hub.database_url, {sid}, timeout=120)
    client = SyncFHIRClient(f"{hub.base_url}/fhir", authorization=jetons.entete("spst")["Authorization"])

    def statut() -> str | None:
        found = client.resources("Task").search(**{"based-on": f"ServiceRequest/{reference}"}).fetch()
        return found[0]["status"] if len(found) == 1 else None

    vus = [wait_for("requested", lambda: statut() == "requested" and "requested")]
    for type_, extra, attendu in (("prise-en-charge", {}, "accepted"),
                                  ("entretien", {"mode_entretien": "telephone"}, "in-progress"),
                                  ("cloture", {"issue": "maintien-poste"}, "completed")):
        body = {"suivi_id": f"{sid}:{type_}", "signalement_id": sid, "type": type_,
                "survenu_le": datetime.now(UTC).isoformat(), "commentaire": "texte libre à ne pas renvoyer", **extra}
        r = httpx.post(f"{hub.base_url}/v1/suivis", json=body, timeout=15,
                       headers=emetteur.entete(habilitations=["assistant:31-toulouse"]))  # the team holding it
        assert r.status_code == 202, r.text
        vus.append(wait_for(attendu, lambda a=attendu: statut() == a and a))
    assert vus == ["requested", "accepted", "in-progress", "completed"]  # Gravity's transitions, in order
    task = client.reference("Task", sid).to_resource()
    assert task["businessStatus"]["coding"][0]["code"] == "maintien-poste"
    assert task["owner"]["identifier"]["value"] == "31-toulouse" and task["basedOn"][0]["reference"] == f"ServiceRequest/{reference}"
    assert "texte libre" not in json.dumps(task.serialize())

    # The same Tasks on retours.spst, for a partner that consumes Kafka instead of polling.
    retours = [r for r in decoded(broker.bootstrap, "retours.spst", "Retour") if r["signalement_id"] == sid]
    assert [json.loads(r["fhir_task"])["status"] for r in retours] == vus
    assert json.loads(retours[-1]["fhir_task"]) == task.serialize()

    # Another partner's token gets nothing: 403, as an OperationOutcome.
    for token_of in ("cpam", "mdph"):
        r = httpx.get(f"{hub.base_url}/fhir/Task/{sid}", headers=jetons.entete(token_of), timeout=15)
        assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
        r = httpx.get(f"{hub.base_url}/fhir/Task", params={"based-on": f"ServiceRequest/{reference}"},
                      headers=jetons.entete(token_of), timeout=15)
        assert r.status_code == 403 and "entry" not in r.json()
    assert httpx.get(f"{hub.base_url}/fhir/metadata", timeout=15).json()["resourceType"] == "CapabilityStatement"


def test_the_librdkafka_example_producer_is_routed(hub, broker, cles):
    reference = f"CPAM-KAFKA-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "AIGUILLAGE_PSEUDONYM_KEY": cles["AIGUILLAGE_PSEUDONYM_KEY"]}
    extra = [f"-X{k}={v}" for k, v in librdkafka_config(broker).items()]
    out = subprocess.run([sys.executable, str(EXEMPLES / "producteur_kafka.py"), "--bootstrap", broker.bootstrap,
                          "--source", "cpam", "--reference", reference, *extra],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    sid = out.stdout.strip()
    assert sid == signalement_id(Source.CPAM, reference)
    row = wait_rows(hub.database_url, {sid})[sid]
    assert row["source"] == "cpam" and row["file"] == "31-toulouse-SPS" and row["regle"] == "retard-ij"


def librdkafka_config(broker) -> dict[str, str]:
    """The session broker is a plain listener: nothing to add (SASL_SSL would go here)."""
    return {}
