"""The routing core's decisions, one branch each, as pure functions: no Faust, no broker, no dicts of
tables even (``tests/routing_monde.py`` plays whole histories; these pin each decision)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from aiguillage.domain import Affectation, Suivi
from aiguillage.routing import accueil, cycle, equipe, messages
from aiguillage.routing.affectation import orienter
from aiguillage.routing.config_file import charger_texte
from aiguillage.routing.messages import Attendre, Escalade, Liberer, Nouveau, Reorienter
from aiguillage.routing.priorite import EnAttente
from tests.routing_builders import RECU_LE, config_3_equipes, nir_pseudo, sig

T = RECU_LE + timedelta(hours=1)
MOTEUR = charger_texte(config_3_equipes())


def aff(ref: str = "R1", **changes: object) -> Affectation:
    return orienter(MOTEUR, sig(ref, **changes), T).affectation


def ctx(nom: str = "31-a", charges: dict[str, int] | None = None, **kw: object) -> equipe.Contexte:
    c = charges or {}
    return equipe.Contexte(nom, MOTEUR, T, charge_lue=lambda a: c.get(a, 0), **kw)  # type: ignore[arg-type]


def sorties(d: equipe.Decision, kind: type) -> list:
    return [s for s in d.sorties if isinstance(s, kind)]


def ecrites(d: equipe.Decision, kind: type) -> list:
    return [e for e in d.ecritures if isinstance(e, kind)]


def dossier(a: Affectation, **kw: object) -> equipe.Dossier:
    return equipe.dossier_de(a, a.explication, **kw)  # type: ignore[arg-type]


# -- arrival ----------------------------------------------------------------------------------

def test_a_new_signalement_goes_to_its_territory_s_team_to_be_placed():
    r = accueil.accueillir(accueil.Assure(), sig("R1"), MOTEUR, T)
    assert isinstance(r, accueil.VersEquipe) and r.equipe == "31-a" and r.message.placer
    assert r.message.territoire == "31-a"


def test_a_signalement_outside_every_territory_goes_to_the_visible_queue_without_a_team():
    r = accueil.accueillir(accueil.Assure(), sig("R1", departement="69", commune_insee="69123", code_postal="69001"),
                           MOTEUR, T)
    assert isinstance(r, accueil.SansEquipe) and r.aff.equipe is None


def test_an_assure_s_next_signalement_goes_first_to_the_team_of_their_last_case():
    a = accueil.Assure(equipe="34-a")
    r = accueil.accueillir(a, sig("R1"), MOTEUR, T)
    assert isinstance(r, accueil.VersEquipe) and r.equipe == "34-a" and r.message.territoire == "31-a"


def test_a_resend_first_seen_ten_thousand_signalements_earlier_is_not_routed_twice():
    assure, s0 = accueil.Assure(), sig("PREMIER", nir_pseudonyme=nir_pseudo("x"))
    assure = accueil.retenir(assure, [(s0, accueil.accueillir(assure, s0, MOTEUR, T))], T)
    for i in range(10_000):
        s = sig(f"N{i}", nir_pseudonyme=nir_pseudo("x"))
        assure = accueil.retenir(assure, [(s, accueil.accueillir(assure, s, MOTEUR, T))], T)
    assert len(assure.vus) == 10_001
    assert accueil.accueillir(assure, s0, MOTEUR, T) is None


def test_an_id_is_remembered_for_the_horizon_then_forgotten():
    s = sig("R1")
    a = accueil.retenir(accueil.Assure(), [(s, accueil.accueillir(accueil.Assure(), s, MOTEUR, T))], T)
    dans = accueil.retenir(a, [], T + accueil.HORIZON_DEDUP - timedelta(days=1))
    apres = accueil.retenir(a, [], T + accueil.HORIZON_DEDUP + timedelta(days=1))
    assert dans.a_vu(s.signalement_id) and not apres.a_vu(s.signalement_id)


def test_an_entry_of_the_older_list_format_reads_and_ages_from_now():
    a = accueil.Assure.lire({"equipe": "31-a", "vus": ["x", "y"]})
    assert a.a_vu("x") and a.equipe == "31-a"
    assert accueil.retenir(a, [], T).vus == {"x": T.date(), "y": T.date()}


# -- a team's placement -------------------------------------------------------------------------

def test_a_signalement_goes_to_the_caseworker_with_the_skill_and_the_most_room():
    d = equipe.nouveau(ctx(charges={"a1": 2}), Nouveau(aff=aff(), territoire="31-a"))  # SPS: a1 (1 left), a3 (2)
    (e,) = sorties(d, equipe.EmettreAffectation)
    assert e.aff.assistant == "a3" and e.aff.file == "31-a-SPS"
    assert ecrites(d, equipe.PoserCharge) == [equipe.PoserCharge("31-a", "a3", 1)]
    (o,) = ecrites(d, equipe.PoserOuvert)
    assert o.ouvert.dossier == e.aff.signalement_id


def test_a_redelivered_message_sends_the_recorded_affectation_again_and_changes_nothing():
    a = aff()
    placed = a.model_copy(update={"assistant": "a3"})
    d = equipe.nouveau(ctx(dossier=dossier(placed)), Nouveau(aff=a, territoire="31-a"))
    assert [s.aff for s in sorties(d, equipe.EmettreAffectation)] == [placed] and not d.ecritures


def test_an_open_case_of_the_assure_here_takes_the_new_signalement_same_caseworker():
    ouvert = dossier(aff("OUVERT").model_copy(update={"assistant": "a1"}))
    d = equipe.nouveau(ctx(ouvert=equipe.Ouvert(dossier=ouvert.aff.signalement_id), dossier_ouvert=ouvert),
                       Nouveau(aff=aff("R2"), territoire="31-a"))
    (e,) = sorties(d, equipe.EmettreAffectation)
    assert e.aff.assistant == "a1" and e.aff.dossier_id == ouvert.aff.signalement_id and "référent unique" in e.aff.explication
    assert not ecrites(d, equipe.PoserCharge)  # one case, not two
    (p,) = ecrites(d, equipe.PoserDossier)
    assert p.dossier.lie_a == ouvert.aff.signalement_id


def test_a_case_that_moved_is_followed_a_bounded_number_of_hops():
    m = Nouveau(aff=aff(), territoire="31-a")
    d = equipe.nouveau(ctx(ouvert=equipe.Ouvert(transfere="31-b")), m)
    (t,) = sorties(d, equipe.Transmettre)
    assert t.equipe == "31-b" and t.message.sauts == 1
    d = equipe.nouveau(ctx(ouvert=equipe.Ouvert(transfere="31-b")), m.model_copy(update={"sauts": equipe.MAX_SAUTS}))
    assert not sorties(d, equipe.Transmettre) and sorties(d, equipe.EmettreAffectation)


def test_at_the_referent_s_team_a_signalement_of_another_territory_goes_on_to_its_territory():
    d = equipe.nouveau(ctx("34-a"), Nouveau(aff=aff(), territoire="31-a"))
    (t,) = sorties(d, equipe.Transmettre)
    assert t.equipe == "31-a" and not d.ecritures


def test_a_named_queue_records_the_signalement_without_a_caseworker():
    a = aff(consentement=False)
    d = equipe.nouveau(ctx(), Nouveau(aff=a, placer=False, territoire="31-a"))
    (e,) = sorties(d, equipe.EmettreAffectation)
    assert e.aff.assistant is None and e.aff.file == "31-recueil-consentement"
    (p,) = ecrites(d, equipe.PoserDossier)
    assert p.dossier.special and not p.dossier.en_attente


def test_a_full_team_overflows_to_its_neighbour_and_remembers_where():
    full = {"a1": 3, "a2": 2, "a3": 2}
    d = equipe.nouveau(ctx(charges=full), Nouveau(aff=aff(), territoire="31-a"))
    (t,) = sorties(d, equipe.Transmettre)
    assert t.equipe == "31-b" and t.message.deborde_de == "31-a"
    assert ecrites(d, equipe.PoserOuvert)[0].ouvert.transfere == "31-b"


def test_a_full_team_whose_neighbour_is_full_here_too_waits_at_once():
    full = {"a1": 3, "a2": 2, "a3": 2}
    d = equipe.nouveau(ctx(charges=full, voisine_pleine=lambda _e, _a: True), Nouveau(aff=aff(), territoire="31-a"))
    assert not sorties(d, equipe.Transmettre)
    (e,) = sorties(d, equipe.EmettreAffectation)
    assert e.aff.assistant is None and "pleine aussi" in e.aff.explication
    # The assuré's entry is set twice (moved, then the waiting case): written once, as it ends.
    assert [o.ouvert.transfere for o in ecrites(d, equipe.PoserOuvert)] == ["31-b", None]
    (final,) = [w for w in d.ecritures_finales() if isinstance(w, equipe.PoserOuvert)]
    assert final.ouvert.dossier == e.aff.signalement_id and final == ecrites(d, equipe.PoserOuvert)[-1]


def test_an_overflow_that_finds_the_neighbour_full_too_goes_back_to_wait_at_home():
    m = Nouveau(aff=aff(), territoire="31-a", deborde_de="31-a", raison_debordement="31-a pleine")
    d = equipe.nouveau(ctx("31-b", charges={"b1": 2}), m)
    (t,) = sorties(d, equipe.Transmettre)
    assert t.equipe == "31-a" and isinstance(t.message, Attendre)


def test_an_overflow_the_neighbour_can_take_is_placed_there_with_where_it_came_from():
    m = Nouveau(aff=aff(), territoire="31-a", deborde_de="31-a", raison_debordement="31-a pleine")
    (e,) = sorties(equipe.nouveau(ctx("31-b"), m), equipe.EmettreAffectation)
    assert e.aff.assistant == "b1" and e.aff.file_precedente == "31-a-SPS"


def test_waiting_takes_a_caseworker_if_one_has_room_since():
    d = equipe.attendre(ctx(), Attendre(aff=aff(), raison="31-b pleine aussi"))
    (e,) = sorties(d, equipe.EmettreAffectation)
    assert e.aff.assistant == "a1" and "de retour" in e.aff.explication


# -- closing, waiting file, réorientation, escalation -------------------------------------------

def _file(*refs: str) -> list[equipe.Dossier]:
    return [dossier(aff(r)) for r in refs]


def test_a_closed_case_frees_its_caseworker_then_the_waiting_file_is_served_in_order():
    tenu = dossier(aff("TENU").model_copy(update={"assistant": "a3"}))
    d = equipe.liberer(ctx(charges={"a1": 3, "a3": 2}, dossier=tenu), Liberer(sid=tenu.aff.signalement_id),
                       lambda: _file("W1", "W2"))
    assert ecrites(d, equipe.OterDossier) == [equipe.OterDossier(tenu.aff.signalement_id, "31-a")]
    charges = ecrites(d, equipe.PoserCharge)
    assert charges[0] == equipe.PoserCharge("31-a", "a3", 1) and charges[-1] == equipe.PoserCharge("31-a", "a3", 2)
    (e,) = sorties(d, equipe.EmettreAffectation)  # one room: the first waiting one, not the second
    assert e.aff.source_ref == "W1" and e.aff.nature == "attribution" and e.aff.sequence == 1


def test_a_close_for_a_signalement_this_team_does_not_hold_changes_nothing():
    assert equipe.liberer(ctx("34-a", dossier=dossier(aff())), Liberer(sid="x"), list).ecritures == []


def test_the_file_is_read_no_further_than_the_rooms():
    lus = []

    def file():
        for d in [dossier(aff("W1")), dossier(aff("W2", arret_jours=30)), dossier(aff("W3"))]:  # SPS, PDP, SPS
            lus.append(d.aff.source_ref)
            yield d

    tenu = dossier(aff("TENU").model_copy(update={"assistant": "a3"}))
    equipe.liberer(ctx(charges={"a1": 3, "a2": 2, "a3": 2}, dossier=tenu), Liberer(sid=tenu.aff.signalement_id), file)
    assert lus == ["W1", "W2"]  # W1 took a3's room; W2 found none in PDP: both axes full, W3 is not read


def test_a_reorientation_frees_here_and_routes_again_one_sequence_later():
    tenu = dossier(aff("TENU").model_copy(update={"assistant": "a1"}))
    m = Reorienter(sid=tenu.aff.signalement_id, vers="equipe:34-a", suivi_id="s1", quand=T, assistant="a1")
    d = equipe.reorienter(ctx(charges={"a1": 1}, dossier=tenu), m, list)
    (t,) = sorties(d, equipe.Transmettre)
    assert t.equipe == "34-a" and t.message.aff.sequence == 1 and t.message.aff.nature == "reorientation"
    assert t.message.reorientation == "s1" and ecrites(d, equipe.PoserCharge) == [equipe.PoserCharge("31-a", "a1", 0)]
    redelivered = equipe.dossier_de(tenu.aff, tenu.base, reorientation="s1")
    assert equipe.reorienter(ctx(dossier=redelivered), m, list).sorties == []


def test_an_escalation_raises_the_priorite_once_per_breach():
    a = aff()
    m = Escalade(sid=a.signalement_id, echeance=a.echeance_premier_contact)
    d = equipe.escalader(ctx(dossier=dossier(a), escalades=2), m)
    (e,) = sorties(d, equipe.EmettreAffectation)
    assert e.aff.priorite == 2 and e.aff.sequence == 1 and e.aff.echeance_premier_contact > T.date()
    assert sorties(d, equipe.PublierFigure)[0].valeur == 3
    deja = dossier(e.aff)  # the deadline moved: the same breach asks nothing more
    assert equipe.escalader(ctx(dossier=deja), m).sorties == []


# -- the life cycle -----------------------------------------------------------------------------

def suivi(sid: str, type_: str, n: int = 1, **extra: object) -> Suivi:
    return Suivi(suivi_id=f"{sid}:{type_}:{n}", signalement_id=sid, type=type_, survenu_le=T, **extra)  # type: ignore[arg-type]


def entree(a: Affectation, statut: str = "requested") -> dict:
    return {"statut": statut, "aff": cycle.ce_qui_reste(a), "suivis": []}


def test_the_first_affectation_makes_a_signalement_requested_and_tells_its_partner():
    a = aff()
    i = cycle.sur_affectation(None, a, MOTEUR.equipes, MOTEUR.version, T)
    assert i.entree["statut"] == "requested"
    (r,) = i.sorties
    assert isinstance(r, cycle.PublierRetour) and r.retour["statut"] == "requested" and r.source == "cpam"


def test_an_older_or_repeated_affectation_changes_nothing():
    a = aff()
    assert cycle.sur_affectation(entree(a), a, MOTEUR.equipes, MOTEUR.version, T).entree is None


def test_suivis_before_the_first_affectation_are_kept_then_applied_and_counted_then():
    a = aff()
    kept = cycle.sur_suivi(None, suivi(a.signalement_id, "prise-en-charge", commentaire="libre"), MOTEUR.equipes,
                           MOTEUR.version, T)
    assert kept.acceptes == [] and "libre" not in str(kept.entree)
    i = cycle.sur_affectation(kept.entree, a, MOTEUR.equipes, MOTEUR.version, T)
    assert i.entree["statut"] == "accepted" and [s.type.value for s in i.acceptes] == ["prise-en-charge"]


@pytest.mark.parametrize(("statut", "type_", "attendu"), [
    ("requested", "prise-en-charge", "accepted"), ("accepted", "entretien", "in-progress"),
    ("in-progress", "cloture", "completed"), ("requested", "refus", "rejected"),
])
def test_an_accepted_suivi_moves_the_status_and_tells_the_partner(statut, type_, attendu):
    a = aff()
    extra = {"issue": "maintien-poste"} if type_ == "cloture" else {"mode_entretien": "de-visu"} if type_ == "entretien" else {}
    i = cycle.sur_suivi(entree(a, statut), suivi(a.signalement_id, type_, **extra), MOTEUR.equipes, MOTEUR.version, T)
    assert i.rejet is None and i.entree["statut"] == attendu and len(i.acceptes) == 1
    assert any(isinstance(s, cycle.PublierRetour) and s.retour["statut"] == attendu for s in i.sorties)


def test_an_entretien_after_a_cloture_is_refused_changes_nothing_and_counts_nowhere():
    a = aff()
    i = cycle.sur_suivi(entree(a, "completed"), suivi(a.signalement_id, "entretien", mode_entretien="de-visu"),
                        MOTEUR.equipes, MOTEUR.version, T)
    assert i.rejet is not None and i.rejet.code == "transition-impossible"
    assert i.entree is None and i.sorties == [] and i.acceptes == []


def test_a_resent_suivi_is_applied_once():
    a = aff()
    s = suivi(a.signalement_id, "prise-en-charge")
    premier = cycle.sur_suivi(entree(a), s, MOTEUR.equipes, MOTEUR.version, T)
    assert cycle.sur_suivi(premier.entree, s, MOTEUR.equipes, MOTEUR.version, T).acceptes == []


def test_a_closure_frees_the_case_in_its_team():
    a = aff().model_copy(update={"equipe": "31-a"})
    i = cycle.sur_suivi(entree(a, "in-progress"), suivi(a.signalement_id, "cloture", issue="maintien-poste"),
                        MOTEUR.equipes, MOTEUR.version, T)
    assert [s for s in i.sorties if isinstance(s, cycle.DireEquipe)] == [cycle.DireEquipe("31-a", Liberer(sid=a.signalement_id))]


def test_a_reorientation_to_a_team_that_does_not_exist_is_refused():
    a = aff()
    i = cycle.sur_suivi(entree(a), suivi(a.signalement_id, "reorientation", reorientation_vers="equipe:99-z"),
                        MOTEUR.equipes, MOTEUR.version, T)
    assert i.rejet is not None and i.rejet.code == "equipe-inconnue"


def test_a_reorientation_without_a_team_is_routed_again_by_the_life_cycle_itself():
    a = aff(departement="69", commune_insee="69123", code_postal="69001")
    i = cycle.sur_suivi(entree(a), suivi(a.signalement_id, "reorientation", reorientation_vers="equipe:34-a"),
                        MOTEUR.equipes, MOTEUR.version, T)
    (dire,) = [s for s in i.sorties if isinstance(s, cycle.DireEquipe)]
    assert dire.equipe == "34-a" and isinstance(dire.message, Nouveau) and dire.message.aff.sequence == 1


def test_a_missed_deadline_is_escalated_once_and_not_after_a_contact():
    a = aff().model_copy(update={"equipe": "31-a"})
    e = a.echeance_premier_contact.isoformat()
    i = cycle.sur_echeance(entree(a), e, MOTEUR, T)
    assert i.sorties == [cycle.DireEquipe("31-a", Escalade(sid=a.signalement_id, echeance=date.fromisoformat(e)))]
    assert cycle.sur_echeance(i.entree, e, MOTEUR, T).sorties == []  # once per breach
    assert cycle.sur_echeance(entree(a, "accepted"), e, MOTEUR, T).sorties == []  # contacted


def test_a_missed_deadline_without_a_team_gets_its_escalation_from_the_life_cycle():
    a = aff(departement="69", commune_insee="69123", code_postal="69001")
    (s,) = cycle.sur_echeance(entree(a), a.echeance_premier_contact.isoformat(), MOTEUR, T).sorties
    assert isinstance(s, cycle.EmettreAffectation) and s.aff.nature == "escalade"


# -- the messages between them ------------------------------------------------------------------

def test_team_messages_round_trip_typed_alone_and_in_packets():
    ms = [("31-a", Nouveau(aff=aff(), territoire="31-a")), ("31-b", Liberer(sid="x")),
          ("34-a", Reorienter(sid="y", vers="axe:PDP", suivi_id="s", quand=T)),
          ("31-a", Escalade(sid="z", echeance=date(2026, 12, 1))), ("31-a", Attendre(aff=aff(), raison="r"))]
    assert messages.decoder(None, messages.encoder_paquet(ms)) == ms
    assert messages.decoder(b"31-b", messages.encoder(Liberer(sid="x"))) == [("31-b", Liberer(sid="x"))]


def test_a_message_written_by_the_previous_worker_still_reads():
    ancien = (b'{"lot": [["31-a", {"kind": "liberer", "sid": "x"}], ["31-b", {"kind": "escalade", "sid": "y", '
              b'"echeance": "2026-12-01"}]]}')
    assert messages.decoder(None, ancien) == [("31-a", Liberer(sid="x")), ("31-b", Escalade(sid="y", echeance=date(2026, 12, 1)))]


def test_a_message_of_an_unknown_kind_is_an_error_the_agent_can_dead_letter():
    with pytest.raises(ValueError, match="kind"):
        messages.decoder(b"31-a", b'{"kind": "demolir", "sid": "x"}')


def test_decisions_read_no_clock_a_decision_replayed_is_the_same():
    m = Nouveau(aff=aff(), territoire="31-a")
    assert equipe.nouveau(ctx(), m) == equipe.nouveau(ctx(), m)
    assert equipe.nouveau(ctx(), m).sorties[0].aff.decide_le == aff().decide_le  # from the message, not now
    assert datetime.now(UTC) > T


# -- what is forgotten, and when --------------------------------------------------------------

def test_a_closed_entry_is_purged_after_its_grace_and_an_open_one_never():
    a = aff()
    clos = cycle.sur_suivi(entree(a, "in-progress"), suivi(a.signalement_id, "cloture", issue="maintien-poste"),
                           MOTEUR.equipes, MOTEUR.version, T).entree
    jour = cycle.a_purger(clos)
    assert jour == (T.date() + cycle.PURGE_APRES).isoformat()
    assert not cycle.sur_purge(clos, jour, T.date()).purger  # not yet
    assert cycle.sur_purge(clos, jour, date.fromisoformat(jour)).purger
    assert cycle.a_purger(entree(a, "in-progress")) is None
    assert not cycle.sur_purge(entree(a, "in-progress"), jour, date.fromisoformat(jour)).purger  # reopened? no: open


def test_a_dedup_entry_expires_only_when_all_its_ids_are_past_the_horizon():
    s1, s2 = sig("R1"), sig("R2")
    a = accueil.retenir(accueil.Assure(), [(s1, accueil.accueillir(accueil.Assure(), s1, MOTEUR, T))], T)
    plus_tard = T + timedelta(days=300)
    a = accueil.retenir(a, [(s2, accueil.accueillir(a, s2, MOTEUR, plus_tard))], plus_tard)
    assert not accueil.expire(a, T + accueil.HORIZON_DEDUP + timedelta(days=1))  # R2 is still within
    assert accueil.expire(a, plus_tard + accueil.HORIZON_DEDUP + timedelta(days=1))


def test_the_final_writes_leave_the_tables_as_every_write_would():
    def appliquer(ecritures):
        t = {}
        for w in ecritures:
            cle = (type(w).__name__, getattr(w, "cle", None) or getattr(w, "sid", None) or (w.equipe, getattr(w, "assistant", None)))
            t[cle] = w
        return t

    d = equipe.Decision(ecritures=[
        equipe.PoserOuvert("31-a|n1", equipe.Ouvert(transfere="31-b")), equipe.PoserCharge("31-a", "a1", 3),
        equipe.CompterEscalade("31-a", 1), equipe.PoserOuvert("31-a|n2", None),
        equipe.PoserOuvert("31-a|n1", equipe.Ouvert(dossier="s1")), equipe.PoserCharge("31-a", "a1", 2),
        equipe.CompterEscalade("31-a", 2),
    ])
    finales = d.ecritures_finales()
    assert appliquer(finales) == appliquer(d.ecritures)
    assert len(finales) == 5  # an entry and a caseload set twice: once each; the escalation counts kept


@pytest.mark.parametrize(("changes", "attend"), [
    ({"assistant": None}, True), ({"assistant": None, "special": True}, False),
    ({"assistant": None, "lie_a": "autre"}, False), ({"assistant": "A1"}, False)])
def test_a_stored_dossier_read_for_the_waiting_files_alone_says_what_the_whole_dossier_says(changes, attend):
    stocke = dossier(aff()).model_copy(update=changes).model_dump(mode="json")  # as the dossiers table holds it
    lu, entier = equipe.en_file("S1", stocke), equipe.Dossier.model_validate(stocke)
    assert (lu is not None) is entier.en_attente is attend
    if lu is not None:
        assert lu == (entier.equipe, EnAttente("S1", entier.priorite, entier.recu_le))


def test_a_stored_dossier_that_reads_badly_is_refused_with_what_is_wrong():
    stocke = dossier(aff()).model_dump(mode="json") | {"recu_le": "hier"}
    with pytest.raises(ValidationError, match="recu_le"):
        equipe.en_file("S1", stocke)
