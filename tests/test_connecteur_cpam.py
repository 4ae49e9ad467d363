from __future__ import annotations

import json
from datetime import UTC, datetime

from aiguillage.dlq import Rejet
from aiguillage.domain import Axe, Signalement, signalement_id
from connectors.cpam import CpamConnector

CLE = b"test-key"
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def lire(body: bytes):
    return list(CpamConnector().lire(body, NOW, CLE))


def test_example_becomes_one_signalement(exemple_cpam):
    [s] = lire(json.dumps(exemple_cpam).encode())
    assert isinstance(s, Signalement)
    assert s.signalement_id == signalement_id("cpam", exemple_cpam["reference"])
    assert s.departement == "31" and s.axe_suggere == Axe.SPS
    assert exemple_cpam["assure"]["nir"] not in s.model_dump_json()


def test_resend_gives_the_same_id(exemple_cpam):
    body = json.dumps(exemple_cpam).encode()
    assert lire(body)[0].signalement_id == lire(body)[0].signalement_id


def test_wrong_nir_key_names_the_field_never_the_value(exemple_cpam):
    nir_ = exemple_cpam["assure"]["nir"]
    exemple_cpam["assure"]["nir"] = nir_[:-2] + "00"
    [r] = lire(json.dumps(exemple_cpam).encode())
    assert isinstance(r, Rejet) and r.code == "nir-cle-invalide"
    assert r.fields[0]["field"] == "assure.nir"
    assert nir_[:13] not in json.dumps(r.as_json())


def test_missing_commune_is_named(exemple_cpam):
    del exemple_cpam["assure"]["commune_insee"]
    [r] = lire(json.dumps(exemple_cpam).encode())
    assert r.code == "champ-manquant"
    assert [f["field"] for f in r.fields] == ["assure.commune_insee"]


def test_several_wrong_fields_are_all_named(exemple_cpam):
    exemple_cpam["risque"] = "rhume"
    exemple_cpam["assure"]["sexe"] = "X"
    [r] = lire(json.dumps(exemple_cpam).encode())
    assert {f["field"] for f in r.fields} == {"risque", "assure.sexe"}


def test_validation_errors_do_not_echo_input_values(exemple_cpam):
    exemple_cpam["assure"]["nir"] = 275013155512368  # a number, not a string
    [r] = lire(json.dumps(exemple_cpam).encode())
    assert "275013155512368" not in json.dumps(r.as_json())


def test_malformed_json_is_a_json_error():
    [r] = lire(b'{"reference": ')
    assert r.code == "json-invalide" and "line 1" in r.reason


def test_bytes_that_are_not_text_are_an_encoding_error():
    [r] = lire(b"\xff\xfe\x00garbage")
    assert r.code == "encodage-invalide"
