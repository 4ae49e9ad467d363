"""The four partner formats besides the CPAM's: examples, named errors, hostile input, and
property tests (any input ends as Signalements or typed Rejets, never another exception)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguillage.dlq import Rejet
from aiguillage.domain import Axe, Motif, Sexe, Signalement, Source, signalement_id
from connectors.registry import CONNECTORS
from tests.conftest import EXEMPLES
from tests.mutations import muter

CLE = b"test-key"
NOW = datetime(2026, 11, 23, tzinfo=UTC)
FICHIERS = {
    Source.SERVICE_MEDICAL: "service-medical.csv",
    Source.CPAM: "cpam.json",
    Source.SPST: "spst.fhir.json",
    Source.CAP_EMPLOI: "cap-emploi.json",
    Source.MDPH: "mdph.xml",
}
NIRS = {
    "184063155512348", "156013155500107", "275013155512368", "168036938321177", "279053106904544",
    "271033139507701",
}


def lire(source: Source, body: bytes) -> list[Signalement | Rejet]:
    return list(CONNECTORS[source].lire(body, NOW, CLE))


def exemple(source: Source) -> bytes:
    return (EXEMPLES / FICHIERS[source]).read_bytes()


@pytest.mark.parametrize("source", list(Source))
def test_each_partner_example_becomes_signalements_without_the_nir(source):
    out = lire(source, exemple(source))
    assert out and all(isinstance(s, Signalement) for s in out), out
    for s in out:
        assert s.source == source and s.signalement_id == signalement_id(source, s.source_ref)
        assert not any(n in s.model_dump_json() for n in NIRS)


def test_service_medical_csv_maps_french_dates_and_insee_codes():
    first, second = lire(Source.SERVICE_MEDICAL, exemple(Source.SERVICE_MEDICAL))
    assert first.annee_naissance == 1984 and first.sexe == Sexe.M
    assert first.arret_debut.isoformat() == "2026-08-02" and first.arret_jours == 113
    assert second.axe_suggere is None and second.commentaire is None


def test_service_medical_csv_without_bom_reads_the_same():
    body = exemple(Source.SERVICE_MEDICAL).removeprefix(b"\xef\xbb\xbf")
    assert [s.signalement_id for s in lire(Source.SERVICE_MEDICAL, body)] == [
        s.signalement_id for s in lire(Source.SERVICE_MEDICAL, exemple(Source.SERVICE_MEDICAL))
    ]


def test_service_medical_missing_column_refuses_the_file_naming_it():
    lines = exemple(Source.SERVICE_MEDICAL).decode("utf-8-sig").splitlines()
    header = lines[0].replace(";motif", "")
    [r] = lire(Source.SERVICE_MEDICAL, "\n".join([header, *lines[1:]]).encode())
    assert r.code == "colonne-manquante" and r.fields[0]["field"] == "motif" and r.ligne == 1


def test_service_medical_bad_lines_are_rejected_with_their_numbers_and_the_rest_passes():
    lines = exemple(Source.SERVICE_MEDICAL).splitlines()
    bad_date = lines[1].replace(b"14/06/1984", b"1984-06-14")
    short = b"SM-X;1"
    out = lire(Source.SERVICE_MEDICAL, b"\n".join([lines[0], bad_date, short, b"\xff\xfe;;", lines[2]]))
    assert [type(x).__name__ for x in out] == ["Rejet", "Rejet", "Rejet", "Signalement"]
    assert [(r.code, r.ligne) for r in out[:3]] == [("champ-invalide", 2), ("csv-invalide", 3), ("encodage-invalide", 4)]
    assert out[0].fields[0]["field"] == "date_naissance" and "JJ/MM/AAAA" in out[0].fields[0]["problem"]


def test_spst_service_request_alone_with_contained_patient():
    bundle = json.loads(exemple(Source.SPST))
    patient = copy.deepcopy(bundle["entry"][0]["resource"]) | {"id": "p"}
    demande = bundle["entry"][1]["resource"] | {"contained": [patient], "subject": {"reference": "#p"}}
    [s] = lire(Source.SPST, json.dumps(demande).encode())
    assert s.departement == "69" and s.motif == Motif.RESTRICTIONS_APTITUDE and s.axe_suggere == Axe.PDP


def test_spst_wrong_resource_type_is_named():
    patient = json.loads(exemple(Source.SPST))["entry"][0]["resource"]
    [r] = lire(Source.SPST, json.dumps(patient).encode())
    assert r.code == "fhir-type-inattendu" and "not a Patient" in r.reason


def test_spst_nir_is_read_only_from_the_ins_nir_identifier():
    bundle = json.loads(exemple(Source.SPST))
    bundle["entry"][0]["resource"]["identifier"][0]["system"] = "urn:oid:1.2.250.1.213.1.4.10"
    [r] = lire(Source.SPST, json.dumps(bundle).encode())
    assert r.code == "champ-manquant" and r.fields[0]["field"] == "Patient.identifier"


def test_spst_errors_name_fhir_paths():
    bundle = json.loads(exemple(Source.SPST))
    bundle["entry"][0]["resource"]["gender"] = "unknown"
    bundle["entry"][1]["resource"]["reasonCode"] = []
    [r] = lire(Source.SPST, json.dumps(bundle).encode())
    assert {f["field"] for f in r.fields} == {"Patient.gender", "ServiceRequest.reasonCode"}


def test_cap_emploi_own_codes_are_mapped():
    [s] = lire(Source.CAP_EMPLOI, exemple(Source.CAP_EMPLOI))
    assert s.sexe == Sexe.F and s.axe_suggere == Axe.PDP and s.motif == Motif.RESTRICTIONS_APTITUDE
    body = json.loads(exemple(Source.CAP_EMPLOI))
    body["statutEmploi"] = "salarie"
    [r] = lire(Source.CAP_EMPLOI, json.dumps(body).encode())
    assert r.fields[0]["field"] == "statutEmploi" and "SALARIE" in r.fields[0]["problem"]


def test_mdph_entity_expansion_and_external_entities_are_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><l>&b;</l>'
    xxe = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]><l>&x;</l>'
    for body in (bomb, xxe):
        [r] = lire(Source.MDPH, body)
        assert r.code == "xml-interdit"


def test_mdph_structure_errors_are_named():
    body = exemple(Source.MDPH).replace(b"<sexe>F</sexe>", b"<sexe>F</sexe><sexe>M</sexe>")
    [r] = lire(Source.MDPH, body)
    assert r.code == "xml-structure" and r.fields[0]["field"] == "personne.sexe"
    body = exemple(Source.MDPH).replace(b"<risque>invalidite</risque>", b"<gravite>3</gravite>")
    [r] = lire(Source.MDPH, body)
    assert {f["field"] for f in r.fields} == {"risque", "gravite"}
    [r] = lire(Source.MDPH, exemple(Source.MDPH).replace(b'xmlns="urn:aiguillage:mdph:1"', b""))
    assert r.code == "xml-structure"


def test_xsd_published_beside_the_connector_declares_every_element_read():
    xsd = (EXEMPLES.parent / "mdph.xsd").read_text(encoding="utf-8")
    from connectors.mdph import SignalementMdph

    personne = SignalementMdph.model_fields["personne"].annotation
    for model in (SignalementMdph, personne):
        for name, field in model.model_fields.items():  # type: ignore[union-attr]
            assert f'name="{field.alias or name}"' in xsd


@pytest.mark.parametrize("source", list(Source))
def test_bytes_that_are_not_text_are_a_typed_rejet(source):
    [r] = lire(source, b"\xff\xfe\x00\x81garbage")
    assert isinstance(r, Rejet) and r.code in {"encodage-invalide", "xml-invalide", "colonne-manquante"}


# -- property tests: arbitrary and mutated inputs --------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_typed(source: Source, body: bytes) -> None:
    out = lire(source, body)
    assert out, "every input ends as at least one Signalement or Rejet"
    assert all(isinstance(x, Signalement | Rejet) for x in out)
    said = json.dumps([x.as_json() if isinstance(x, Rejet) else x.model_dump(mode="json") for x in out])
    assert not any(n[:13] in said for n in NIRS), "a NIR sent in is echoed back"


def _mutate(doc, data) -> object:
    doc = copy.deepcopy(doc)
    return doc if muter(doc, data, JSON_VALUES) else data.draw(JSON_VALUES)


@pytest.mark.parametrize("source", list(Source))
@PROPS
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_end_as_typed_results(source, body):
    _only_typed(source, body)


@pytest.mark.parametrize("source", [Source.CPAM, Source.SPST, Source.CAP_EMPLOI])
@PROPS
@given(data=st.data())
def test_mutated_json_examples_end_as_typed_results(source, data):
    doc = _mutate(json.loads(exemple(source)), data)
    _only_typed(source, json.dumps(doc).encode())


@PROPS
@given(data=st.data())
def test_mutated_csv_lines_end_as_typed_results(data):
    lines = exemple(Source.SERVICE_MEDICAL).decode("utf-8-sig").splitlines()
    header, row = lines[0].split(";"), lines[1].split(";")
    i = data.draw(st.integers(0, len(row) - 1))
    row[i] = data.draw(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=15))
    if data.draw(st.booleans()):
        del row[data.draw(st.integers(0, len(row) - 1))]
    if data.draw(st.booleans()):
        del header[data.draw(st.integers(0, len(header) - 1))]
    _only_typed(Source.SERVICE_MEDICAL, "\n".join([";".join(header), ";".join(row)]).encode())


@PROPS
@given(data=st.data())
def test_mutated_xml_examples_end_as_typed_results(data):
    body = exemple(Source.MDPH)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(body)))
        j = data.draw(st.integers(i, min(len(body), i + 20)))
        body = body[:i] + data.draw(st.binary(max_size=10) | st.sampled_from([b"<", b">", b"&", b"<a>", b"</personne>", b""])) + body[j:]
    _only_typed(Source.MDPH, body)


def test_a_direct_kafka_record_must_carry_its_topics_source_and_its_own_id():
    from connectors.base import verifier_provenance

    [s] = lire(Source.MDPH, exemple(Source.MDPH))
    assert verifier_provenance(s, "signalements.entrants.mdph") is None
    assert verifier_provenance(s, "signalements.entrants.cpam").code == "source-usurpee"
    other = s.model_copy(update={"signalement_id": signalement_id("mdph", "another-ref")})
    assert verifier_provenance(other, "signalements.entrants.mdph").code == "id-incoherent"
