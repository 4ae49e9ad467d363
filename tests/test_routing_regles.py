"""The shipped triage rules and territories, by table: every rule and its boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from aiguillage.routing import moteur_par_defaut
from aiguillage.routing.affectation import choisir_equipe, orienter
from aiguillage.routing.config_file import DEPARTEMENTS_OCCITANIE
from aiguillage.routing.triage import trier
from tests.routing_builders import sig

M = moteur_par_defaut()

# (case, changes to the default signalement, rule, axe, priorité, first-contact days)
CAS = [
    ("sans consentement", {"consentement": False}, "consentement-manquant", "SPS", 3, 5),
    ("consentement inconnu (FHIR sans Consent)", {"consentement": None}, "consentement-manquant", "SPS", 3, 5),
    ("situation et risque non renseignés", {"situation": "non-renseigne", "risque": "non-renseigne", "source": "spst"}, "spst", "PDP", 2, 10),
    ("non renseignés, inaptitude", {"situation": "non-renseigne", "risque": "non-renseigne", "motif": "inaptitude"}, "inaptitude", "PDP", 1, 5),
    ("sans consentement, axe PDP suggéré", {"consentement": False, "axe_suggere": "PDP"}, "consentement-manquant", "PDP", 3, 5),
    ("sans consentement l'emporte sur l'inaptitude", {"consentement": False, "motif": "inaptitude"}, "consentement-manquant", "SPS", 3, 5),
    ("inaptitude", {"motif": "inaptitude"}, "inaptitude", "PDP", 1, 5),
    ("restrictions d'aptitude", {"motif": "restrictions-aptitude"}, "inaptitude", "PDP", 1, 5),
    ("inaptitude signalée par le SPST", {"motif": "inaptitude", "source": "spst"}, "inaptitude", "PDP", 1, 5),
    ("retard IJ", {"motif": "retard-paiement-ij"}, "retard-ij", "SPS", 2, 7),
    ("retard IJ pendant un arrêt de 95 jours", {"motif": "retard-paiement-ij", "arret_jours": 95}, "retard-ij", "SPS", 2, 7),
    ("retard IJ avec axe PDP suggéré", {"motif": "retard-paiement-ij", "axe_suggere": "PDP"}, "retard-ij", "SPS", 2, 7),
    ("arrêt de 180 jours (borne)", {"arret_jours": 180}, "arret-tres-long", "PDP", 1, 7),
    ("arrêt de 400 jours", {"arret_jours": 400}, "arret-tres-long", "PDP", 1, 7),
    ("arrêt de 179 jours : long, pas très long", {"arret_jours": 179}, "arret-long", "PDP", 2, 10),
    ("arrêt de 180 jours signalé par le SPST", {"arret_jours": 180, "source": "spst"}, "arret-tres-long", "PDP", 1, 7),
    ("SPST sans arrêt", {"source": "spst"}, "spst", "PDP", 2, 10),
    ("SPST, accès aux soins", {"source": "spst", "motif": "acces-aux-soins"}, "spst", "PDP", 2, 10),
    ("SPST, arrêt de 100 jours", {"source": "spst", "arret_jours": 100}, "spst", "PDP", 2, 10),
    ("Cap emploi", {"source": "cap-emploi"}, "cap-emploi", "PDP", 2, 10),
    ("Cap emploi, RQTH", {"source": "cap-emploi", "motif": "rqth"}, "cap-emploi", "PDP", 2, 10),
    ("arrêt de 90 jours (borne)", {"arret_jours": 90}, "arret-long", "PDP", 2, 10),
    ("arrêt de 89 jours : en cours, pas long", {"arret_jours": 89}, "arret-en-cours", "PDP", 4, 20),
    ("motif arrêt long sans durée", {"motif": "arret-long"}, "arret-long", "PDP", 2, 10),
    ("motif arrêt long, 10 jours déclarés", {"motif": "arret-long", "arret_jours": 10}, "arret-long", "PDP", 2, 10),
    ("service médical, arrêt de 120 jours", {"source": "service-medical", "arret_jours": 120}, "arret-long", "PDP", 2, 10),
    ("60 ans, arrêt de 30 jours (bornes)", {"annee_naissance": 1966, "arret_jours": 30}, "fin-de-carriere", "PDP", 3, 15),
    ("59 ans, arrêt de 30 jours", {"annee_naissance": 1967, "arret_jours": 30}, "arret-en-cours", "PDP", 4, 20),
    ("60 ans, arrêt de 29 jours", {"annee_naissance": 1966, "arret_jours": 29}, "arret-en-cours", "PDP", 4, 20),
    ("tranche 60+, arrêt de 45 jours", {"annee_naissance": None, "tranche_age": "60+", "arret_jours": 45}, "fin-de-carriere", "PDP", 3, 15),
    ("tranche 46-59, arrêt de 45 jours", {"annee_naissance": None, "tranche_age": "46-59", "arret_jours": 45}, "arret-en-cours", "PDP", 4, 20),
    ("âge inconnu, arrêt de 45 jours", {"annee_naissance": None, "arret_jours": 45}, "arret-en-cours", "PDP", 4, 20),
    ("RQTH", {"motif": "rqth"}, "projet-professionnel", "PDP", 3, 15),
    ("reconversion", {"motif": "reconversion"}, "projet-professionnel", "PDP", 3, 15),
    ("reprise à temps partiel", {"motif": "reprise-temps-partiel"}, "projet-professionnel", "PDP", 3, 15),
    ("MDPH, RQTH", {"source": "mdph", "motif": "rqth"}, "projet-professionnel", "PDP", 3, 15),
    ("accès aux soins", {"motif": "acces-aux-soins"}, "acces-aux-soins", "SPS", 2, 10),
    ("accès aux soins, demandeur d'emploi", {"motif": "acces-aux-soins", "situation": "demandeur-emploi"}, "acces-aux-soins", "SPS", 2, 10),
    ("ressources", {"motif": "ressources"}, "ressources", "SPS", 3, 10),
    ("fin de droits", {"motif": "fin-de-droits"}, "ressources", "SPS", 3, 10),
    ("isolement", {"motif": "isolement"}, "isolement", "SPS", 4, 15),
    ("isolement, invalidité", {"motif": "isolement", "risque": "invalidite"}, "isolement", "SPS", 4, 15),
    ("axe PDP suggéré, rien d'autre", {"axe_suggere": "PDP"}, "suggestion-partenaire", "PDP", 4, 15),
    ("axe SPS suggéré, arrêt de 20 jours", {"axe_suggere": "SPS", "arret_jours": 20}, "suggestion-partenaire", "SPS", 4, 15),
    ("arrêt d'un jour (borne)", {"arret_jours": 1}, "arret-en-cours", "PDP", 4, 20),
    ("arrêt de 0 jour : pas d'arrêt", {"arret_jours": 0}, "defaut", "SPS", 5, 20),
    ("rien de particulier", {}, "defaut", "SPS", 5, 20),
    ("AT/MP sans arrêt", {"risque": "at-mp"}, "defaut", "SPS", 5, 20),
    ("indépendant, motif autre", {"situation": "independant"}, "defaut", "SPS", 5, 20),
]


@pytest.mark.parametrize(("changes", "regle", "axe", "priorite", "delai"), [c[1:] for c in CAS], ids=[c[0] for c in CAS])
def test_first_matching_rule_decides_axe_priority_and_delay(changes, regle, axe, priorite, delai):
    t = trier(M, sig(**changes))
    assert (t.regle, t.axe.value, t.priorite, t.delai_jours) == (regle, axe, priorite, delai)


def test_every_shipped_rule_is_covered_by_the_table():
    assert {c[2] for c in CAS} == {r.id for r in M.config.regles}


# (case, commune, postcode, département, team, file)
TERRITOIRES = [
    ("Toulouse par sa commune", "31555", "31000", "31", "31-toulouse", "31-toulouse-SPS"),
    ("Saint-Gaudens par sa commune", "31483", "31800", "31", "31-comminges", "31-comminges-SPS"),
    ("commune inconnue, code postal de Muret", "31999", "31600", "31", "31-comminges", "31-comminges-SPS"),
    ("commune inconnue, préfixe 318*", "31998", "31810", "31", "31-comminges", "31-comminges-SPS"),
    ("ni commune ni code postal connus : équipe par défaut", "31997", "31990", "31", "31-toulouse", "31-toulouse-SPS"),
    ("Béziers par son code postal", "34999", "34500", "34", "34-beziers", "34-beziers-SPS"),
    ("Lozère, une seule équipe", "48095", "48000", "48", "48-lozere", "48-lozere-SPS"),
    ("Alès", "30007", "30100", "30", "30-ales", "30-ales-SPS"),
    ("Rhône : hors territoire, file visible", "69123", "69001", "69", None, "hors-territoire"),
    ("Corse : hors territoire", "2A004", "20000", "2A", None, "hors-territoire"),
]


@pytest.mark.parametrize(("commune", "cp", "dep", "equipe", "file"), [c[1:] for c in TERRITOIRES], ids=[c[0] for c in TERRITOIRES])
def test_territory_picks_the_team_and_the_file(commune, cp, dep, equipe, file):
    s = sig(commune_insee=commune, code_postal=cp, departement=dep)
    assert choisir_equipe(M, s).equipe == equipe
    assert orienter(M, s, datetime.now(UTC)).affectation.file == file


def test_the_thirteen_departements_of_occitanie_each_have_a_fallback_team():
    assert sorted(M.config.territoires) == sorted(DEPARTEMENTS_OCCITANIE)
    for dep, terr in M.config.territoires.items():
        assert terr.equipe_par_defaut in M.equipes and M.departement_de_equipe[terr.equipe_par_defaut] == dep


def test_missing_consent_goes_to_the_departements_consent_queue_visibly():
    o = orienter(M, sig(consentement=False), datetime.now(UTC))
    assert o.affectation.file == "31-recueil-consentement" and not o.a_placer
    assert "consentement" in o.affectation.explication


def test_the_decision_names_rule_and_version_in_one_sentence_with_its_due_date():
    o = orienter(M, sig(motif="retard-paiement-ij"), datetime.now(UTC))
    a = o.affectation
    assert a.regle == "retard-ij" and a.config_version == M.version
    assert "« retard-ij »" in a.explication and M.version in a.explication
    assert a.echeance_premier_contact == date(2026, 11, 30)
    assert a.explication.count(".") <= 1
