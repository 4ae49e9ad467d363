"""The SPST connector on FHIR R4 written from the specification: base elements only, a reason
as text, a postcode for an address, consent from a Consent or unknown; every problem named by
its FHIR path in one OperationOutcome; property tests over the parser."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguillage.dlq import Rejet
from aiguillage.domain import Motif, Risque, Signalement, Situation, Source
from connectors import spst_lecture as lecture
from connectors.registry import CONNECTORS
from tests import fhir_corps as f
from tests.mutations import muter

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SPST = CONNECTORS[Source.SPST]


def lire(doc: dict | bytes) -> list[Signalement | Rejet]:
    return list(SPST.lire(doc if isinstance(doc, bytes) else f.corps(doc), NOW, b"k"))


def test_a_bundle_with_its_patient_and_nothing_of_ours():
    [s] = lire(f.bundle("B-1"))
    assert isinstance(s, Signalement), s
    assert s.departement == "31" and s.commune_insee is None and s.code_postal == "31300"
    assert s.situation is Situation.NON_RENSEIGNE and s.risque is Risque.NON_RENSEIGNE
    assert s.consentement is None and s.annee_naissance == 1972
    assert s.motif is Motif.INAPTITUDE  # a SNOMED coding read by its display


def test_a_service_request_with_a_contained_patient_and_only_a_postcode():
    [s] = lire(f.contenu("C-1", postal="20167"))
    assert isinstance(s, Signalement), s
    assert s.departement == "2A"


@pytest.mark.parametrize("cp,dep", [("31000", "31"), ("20000", "2A"), ("20190", "2A"), ("20200", "2B"),
                                    ("20600", "2B"), ("97411", "974"), ("97200", "972"), ("01000", "01")])
def test_departement_from_a_postcode(cp, dep):
    assert lecture.departement(None, cp) == dep


def test_the_insee_code_wins_over_the_postcode():
    assert lecture.departement("2B033", "20000") == "2B"
    assert lecture.departement(None, "99999") is None and lecture.departement(None, "2000") is None


def test_a_text_only_reason_gives_a_motif_or_autre_with_the_text_kept_as_comment():
    [s] = lire(f.bundle("T-1", reason=f.TEXTE_SEUL))
    assert s.motif is Motif.FIN_DE_DROITS and "fin de droits" in s.commentaire
    [s] = lire(f.bundle("T-2", reason=f.TEXTE_INCONNU))
    assert s.motif is Motif.AUTRE and s.commentaire == f.TEXTE_INCONNU["text"]
    [s] = lire(f.bundle("T-3", reason={"text": "x" * 5000}))
    assert s.motif is Motif.AUTRE and len(s.commentaire) == 2000


def test_our_coded_motif_and_extensions_still_read():
    reason = {"coding": [{"system": lecture.SYSTEME_MOTIF, "code": "rqth"}]}
    ext = [{"url": lecture.EXT + "situation", "valueCode": "salarie"}, {"url": lecture.EXT + "risque", "valueCode": "at-mp"},
           {"url": lecture.EXT + "consentement", "valueBoolean": True}]
    [s] = lire(f.bundle("E-1", reason=reason, extension=ext))
    assert (s.motif, s.situation, s.risque, s.consentement) == (Motif.RQTH, Situation.SALARIE, Risque.AT_MP, True)


def test_consent_from_a_consent_resource():
    [oui] = lire(f.bundle("K-1", f.consent("permit")))
    [non] = lire(f.bundle("K-2", f.consent("deny")))
    [autre] = lire(f.bundle("K-3", f.consent("permit", patient_ref="Patient/someone-else")))
    assert (oui.consentement, non.consentement, autre.consentement) == (True, False, None)


def test_a_wrong_nir_key_is_named_with_every_other_fault_in_one_outcome():
    faux = f.NIR_TOULOUSE[:13] + f"{(int(f.NIR_TOULOUSE[13:]) + 1) % 100:02d}"
    doc = f.bundle("N-1", pat=f.patient(nir_=faux, postal="99999", gender="unknown"))
    doc["entry"][1]["resource"].pop("reasonCode")
    [r] = lire(doc)
    assert isinstance(r, Rejet)
    by_field = {x["field"]: x for x in r.fields}
    assert by_field["Patient.identifier"]["type"] == "nir-cle-invalide"
    assert {"Patient.gender", "ServiceRequest.reasonCode", "Patient.address"} <= set(by_field), r.fields
    oo, media = SPST.corps_du_refus(r)
    assert oo["resourceType"] == "OperationOutcome" and media == "application/fhir+json"
    codes = {i["expression"][0]: i["details"]["coding"][0]["code"] for i in oo["issue"]}
    assert codes["Patient.identifier"] == "nir-cle-invalide" and codes["ServiceRequest.reasonCode"] == "champ-manquant"
    assert f.NIR_TOULOUSE[:13] not in json.dumps(oo)


def test_another_resource_type_is_an_operation_outcome():
    [r] = lire(f.patient())
    oo, _ = SPST.corps_du_refus(r)
    assert r.code == "fhir-type-inattendu" and oo["issue"][0]["code"] == "not-supported"
    assert oo["issue"][0]["expression"] == ["resourceType"]


def test_what_fhir_itself_refuses_is_named_by_its_path():
    doc = f.contenu("F-1")
    doc["contained"][0]["birthDate"] = "14/05/1972"
    [r] = lire(doc)
    assert r.code == "fhir-invalide" and r.fields[0]["field"] == "ServiceRequest.contained[0].birthDate"
    doc = f.bundle("F-2", {"resourceType": "NotAResource"})
    [r] = lire(doc)
    assert r.code == "fhir-invalide"


# -- properties: every input ends as a Signalement or a typed Rejet, no NIR echoed back --------

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=8)
DOCS = [f.bundle("P-1", f.consent("permit")), f.contenu("P-2"), f.bundle("P-3", reason=f.TEXTE_SEUL)]


def _typed(doc_or_bytes) -> None:
    out = lire(doc_or_bytes)
    assert out and all(isinstance(x, Signalement | Rejet) for x in out)
    for x in out:
        said = json.dumps(SPST.corps_du_refus(x)[0] if isinstance(x, Rejet) else x.model_dump(mode="json"))
        assert f.NIR_TOULOUSE[:13] not in said


@PROPS
@given(data=st.data())
def test_mutated_fhir_bodies_end_as_typed_results(data):
    import copy

    doc = copy.deepcopy(data.draw(st.sampled_from(DOCS)))
    muter(doc, data, JSON | st.sampled_from(["Patient", "Consent", "#p", "20200", "deny", "male"]))
    _typed(doc)


@PROPS
@given(body=st.binary(max_size=200) | st.builds(lambda d: json.dumps(d).encode(), JSON))
def test_arbitrary_bodies_end_as_typed_results(body):
    _typed(body)


def test_a_bundle_of_two_service_requests_reads_each_against_its_own_patient():
    doc = f.bundle("D-1")
    url2 = "urn:uuid:7d1e0c3a-9b7f-4e52-8a61-3f2b9c0d4e22"
    doc["entry"] += [{"fullUrl": url2, "resource": f.patient(postal="97411")},
                     {"resource": f.demande("D-2", url2, reason=f.TEXTE_INCONNU)},
                     {"resource": f.demande("D-3", "urn:uuid:nobody")}]
    a, b, c = lire(doc)
    assert (a.source_ref, a.departement) == ("D-1", "31") and (b.source_ref, b.departement) == ("D-2", "974")
    assert isinstance(c, Rejet) and c.code == "fhir-patient-introuvable"
