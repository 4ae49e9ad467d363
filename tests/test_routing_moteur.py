"""The engine beyond triage: configuration errors, caseworker choice, ageing, life cycle, teams."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aiguillage.domain import Axe, Suivi
from aiguillage.routing import ConfigInvalide, charger_texte
from aiguillage.routing import priorite as prio
from aiguillage.routing.affectation import choisir_assistant, placer
from aiguillage.routing.config_file import fichier_par_defaut
from aiguillage.routing.cycle import Statut, TransitionImpossible, transition
from aiguillage.routing.rechargement import ConfigCourante
from tests.routing_builders import RECU_LE, config_3_equipes, nir_pseudo, sig
from tests.routing_monde import Monde

SHIPPED = fichier_par_defaut().read_text(encoding="utf-8")


def suivi(sid: str, type_: str, n: int = 1, **extra) -> Suivi:
    return Suivi(suivi_id=f"{sid}:{type_}:{n}", signalement_id=sid, type=type_, survenu_le=RECU_LE, **extra)


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("priorite: 1, delai_jours: 5}", "priorite: 12, delai_jours: 5}", "regles.1.alors.priorite: Input should be less than or equal to 9"),
        ("debordement: 12-millau", "debordement: 12-nulle-part", "territoires.12.equipes.0.debordement: expected 'attente' or a team id"),
        ("competences: [PDP]", "competences: [XYZ]", "competences.0: Input should be 'PDP' or 'SPS'"),
        ("equipe_par_defaut: 09-ariege", "equipe_par_defaut: 31-toulouse", "territoires.09.equipe_par_defaut: '31-toulouse' is not a team of this territory"),
        ("  - id: isolement\n", "  - id: isolement\n    couleur: bleu\n", "regles.11.couleur: Extra inputs are not permitted"),
    ],
)
def test_a_broken_configuration_names_the_line_and_the_field(old, new, expected):
    bad = SHIPPED.replace(old, new, 1)
    with pytest.raises(ConfigInvalide) as exc:
        charger_texte(bad)
    (probleme,) = exc.value.problemes
    line = int(probleme.split(":")[1])
    assert expected in probleme
    assert new.strip().split("\n")[-1].strip()[:12] in bad.splitlines()[line - 1] or "equipes.0" in probleme


def test_the_last_rule_must_catch_everything():
    bad = SHIPPED.replace("    alors: {axe: SPS, priorite: 5, delai_jours: 20}", "    si: {consentement: true}\n    alors: {axe: SPS, priorite: 5, delai_jours: 20}")
    with pytest.raises(ConfigInvalide, match="the last rule must have no condition"):
        charger_texte(bad)


def test_version_is_the_explicit_field_or_a_hash_of_the_content():
    assert charger_texte(config_3_equipes(version="2026.1")).version == "2026.1"
    a, b = charger_texte(config_3_equipes()), charger_texte(config_3_equipes(capacite=2))
    assert a.version.startswith("sha256:") and a.version != b.version


def test_a_changed_file_is_picked_up_and_a_broken_one_keeps_the_previous(tmp_path: Path, caplog):
    path = tmp_path / "routing.yaml"
    path.write_text(config_3_equipes(version="v1"), encoding="utf-8")
    courante = ConfigCourante(path)
    assert not courante.verifier()
    path.write_text(config_3_equipes(version="v2"), encoding="utf-8")
    assert courante.verifier() and courante.moteur.version == "v2"
    path.write_text(config_3_equipes(version="v3").replace("priorite: 2", "priorite: 0"), encoding="utf-8")
    assert not courante.verifier()
    assert courante.moteur.version == "v2"
    assert "routing configuration refused" in caplog.text and "priorite" in caplog.text


# -- caseworker choice -----------------------------------------------------------------

M3 = charger_texte(config_3_equipes())


def test_the_caseworker_with_the_right_skill_and_most_room_gets_it():
    eq = M3.equipes["31-a"]
    charges = {"a1": 2, "a2": 0, "a3": 0}  # a1 1 free of 3, a2 2 of 2 (PDP), a3 2 of 2 (SPS)
    assert choisir_assistant(eq, Axe.PDP, charges.get)[0].id == "a2"
    assert choisir_assistant(eq, Axe.SPS, charges.get)[0].id == "a3"


def test_ties_go_to_the_smallest_id():
    eq = M3.equipes["31-a"]
    charges = {"a1": 1, "a2": 0, "a3": 0}  # a1 and a2 both have 2 free for PDP
    assert choisir_assistant(eq, Axe.PDP, charges.get)[0].id == "a1"


def test_a_full_team_overflows_to_its_neighbour_then_waits():
    full = {"a1": 3, "a2": 2, "a3": 2}.get
    p = placer(M3, "31-a", Axe.PDP, full)
    assert p.assistant is None and p.deborder_vers == "31-b"
    p = placer(M3, "31-a", Axe.PDP, full, deja_deborde=True)
    assert p.assistant is None and p.deborder_vers is None and "attend" in p.raison
    p = placer(M3, "34-a", Axe.PDP, {"c1": 3, "c2": 0}.get)
    assert p.assistant is None and p.deborder_vers is None  # c2 has room but not the skill


# -- ageing ------------------------------------------------------------------------------


def test_waiting_work_climbs_one_level_per_period_and_stops_at_one():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert prio.priorite_effective(5, t0, t0 + timedelta(days=4), 5) == 5
    assert prio.priorite_effective(5, t0, t0 + timedelta(days=5), 5) == 4
    assert prio.priorite_effective(5, t0, t0 + timedelta(days=100), 5) == 1


def test_within_a_file_order_is_effective_priority_then_age_so_low_priority_is_not_starved():
    now = datetime(2026, 2, 1, tzinfo=UTC)
    vieux = prio.EnAttente("vieux", 5, now - timedelta(days=20))  # 5 - 4 = 1
    urgent = prio.EnAttente("urgent", 2, now - timedelta(days=1))
    frais = prio.EnAttente("frais", 2, now)
    assert [i.signalement_id for i in prio.ordonner([frais, urgent, vieux], now, 5)] == ["vieux", "urgent", "frais"]


# -- life cycle ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("avant", "type_", "apres"),
    [
        ("requested", "reception", "received"),
        ("requested", "prise-en-charge", "accepted"),
        ("received", "prise-en-charge", "accepted"),
        ("accepted", "entretien", "in-progress"),
        ("in-progress", "preconisation", "in-progress"),
        ("in-progress", "cloture", "completed"),
        ("received", "refus", "rejected"),
        ("accepted", "annulation", "cancelled"),
        ("in-progress", "reorientation", "requested"),
    ],
)
def test_suivis_drive_fhir_task_statuses(avant, type_, apres):
    extra = {"issue": "maintien-poste"} if type_ == "cloture" else {}
    if type_ == "reorientation":
        extra = {"reorientation_vers": "axe:SPS"}
    assert transition(Statut(avant), suivi("s", type_, **extra)) == Statut(apres)


@pytest.mark.parametrize(("avant", "type_"), [("requested", "cloture"), ("completed", "entretien"), ("cancelled", "prise-en-charge"), ("received", "entretien")])
def test_an_impossible_transition_is_refused_with_what_was_expected(avant, type_):
    with pytest.raises(TransitionImpossible, match=f"impossible in status '{avant}'; expected"):
        transition(Statut(avant), suivi("s", type_, issue="autre"))


# -- teams, caseloads, référent unique, retours (the agents' code over dict tables) -------


def test_an_assure_with_an_open_case_keeps_one_case_and_one_caseworker(tmp_path):
    banc = Monde(tmp_path, config_3_equipes())
    nir = nir_pseudo("x")
    banc.signalement(sig("CPAM-1", source="cpam", nir_pseudonyme=nir))
    banc.signalement(sig("SPST-1", source="spst", nir_pseudonyme=nir, arret_jours=30))
    premier, second = banc.affectations
    assert premier.assistant and second.assistant == premier.assistant
    assert second.dossier_id == premier.signalement_id and "référent unique" in second.explication
    assert banc.charges[f"31-a|{premier.assistant}"] == 1


def test_closing_a_case_frees_the_caseworker_for_the_oldest_most_urgent_waiting_one(tmp_path):
    banc = Monde(tmp_path, config_3_equipes())
    for i in range(6):  # 34-a handles SPS with c1 (3) and c2 (1): two wait
        banc.signalement(sig(f"R{i}", commune_insee="34172", code_postal="34000", departement="34"))
    attente = [a for a in banc.affectations if a.assistant is None]
    assert len(attente) == 2 and all("attend" in a.explication for a in attente)
    done = next(a for a in banc.affectations if a.assistant == "c2")
    banc.suivi(suivi(done.signalement_id, "prise-en-charge"))
    banc.suivi(suivi(done.signalement_id, "cloture", issue="maintien-poste"))
    attribue = banc.affectations[-1]
    assert attribue.nature == "attribution" and attribue.assistant == "c2" and attribue.sequence == 1
    assert attribue.signalement_id == attente[0].signalement_id  # same priority: the older (then smaller id) first
    statuts = [(r["statut_precedent"], r["statut"]) for r in [r for r in banc.retours if r["source"] == "cpam"] if r["signalement_id"] == done.signalement_id]
    assert statuts == [(None, "requested"), ("requested", "accepted"), ("accepted", "completed")]
    assert all("commentaire" not in r for r in [r for r in banc.retours if r["source"] == "cpam"])


def test_reorientation_reroutes_with_a_readable_history(tmp_path):
    banc = Monde(tmp_path, config_3_equipes())
    banc.signalement(sig("R1"))
    first = banc.affectations[0]
    banc.suivi(suivi(first.signalement_id, "prise-en-charge"))
    banc.suivi(suivi(first.signalement_id, "reorientation", reorientation_vers="equipe:34-a", assistant=first.assistant))
    last = banc.affectations[-1]
    assert (last.nature, last.sequence, last.equipe, last.file_precedente) == ("reorientation", 1, "34-a", first.file)
    assert last.assistant == "c1" and "Réorientation" in last.explication
    assert banc.charges[f"31-a|{first.assistant}"] == 0 and banc.charges["34-a|c1"] == 1


def test_an_impossible_transition_changes_nothing_and_says_why(tmp_path):
    banc = Monde(tmp_path, config_3_equipes())
    banc.signalement(sig("R1"))
    sid = banc.affectations[0].signalement_id
    rejet = banc.suivi(suivi(sid, "cloture", issue="autre"))
    assert rejet.code == "transition-impossible" and "requested" in rejet.reason
    assert banc.cycles[sid]["statut"] == "requested"


def test_a_missed_first_contact_escalates_once_per_breach(tmp_path):
    banc = Monde(tmp_path, config_3_equipes())
    banc.signalement(sig("R1", recu_le=datetime.now(UTC) - timedelta(days=40)))
    assert banc.echeances() == 1
    assert banc.echeances() == 0
    esc = [a for a in banc.affectations if a.nature == "escalade"]
    assert len(esc) == 1 and esc[0].priorite == 2 and esc[0].sequence == 1  # defaut: 4, raised by 2
    assert esc[0].echeance_premier_contact > datetime.now(UTC).date()
    (compte,) = [f for f in banc.figures if f.indicateur == "escalades-premier-contact"]
    assert compte.dimensions == {"equipe": "31-a"} and compte.valeur == 1


def test_the_deadline_scan_sees_a_late_signalement_routed_after_its_index_was_built(tmp_path):
    banc = Monde(tmp_path, config_3_equipes())
    assert banc.echeances() == 0  # builds the deadlines' index from the (empty) table
    banc.signalement(sig("R1", recu_le=datetime.now(UTC) - timedelta(days=40)))
    banc.signalement(sig("R2"))  # not late
    assert banc.echeances() == 1  # from the index, kept up to date by the life cycle's writes
    assert [a.nature for a in banc.affectations].count("escalade") == 1


def test_a_suivi_that_arrives_before_its_affectation_is_applied_when_it_comes(tmp_path):
    banc = Monde(tmp_path, config_3_equipes())
    s = sig("R1")
    assert banc.suivi(suivi(s.signalement_id, "prise-en-charge", commentaire="libre")) is None
    assert "libre" not in str(banc.cycles)  # the free text is not kept in routing state
    banc.signalement(s)
    assert banc.cycles[s.signalement_id]["statut"] == "accepted"
    assert [r["statut"] for r in [r for r in banc.retours if r["source"] == "cpam"]] == ["requested", "accepted"]
