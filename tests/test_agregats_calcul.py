"""The aggregation arithmetic, without a broker: periods, keys, idempotence, confidentiality."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from aiguillage.agregats import calcul, publication
from aiguillage.agregats.periodes import analyser, cle, periode
from aiguillage.demo.parametres import Parametres
from aiguillage.demo.simulateur import affectation_simulee, simuler
from tests.agregats_util import accumuler_simulation, cle_suivi

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_period_keys_follow_iso_weeks_months_and_years():
    assert periode("jour", date(2026, 11, 23)) == "2026-11-23"
    assert periode("semaine", date(2026, 11, 23)) == "2026-W48"
    assert periode("semaine", date(2027, 1, 1)) == "2026-W53"  # ISO: 1 Jan 2027 is in 2026's last week
    assert periode("mois", T0) == "2026-03"
    assert periode("annee", T0) == "2026"


def test_keys_sort_dimensions_and_parse_back():
    c = cle("signalements", "mois", "2026-03", {"source": "spst", "axe": "PDP"})
    assert c == "signalements|mois|2026-03|axe=PDP,source=spst"
    assert analyser(c) == ("signalements", "mois", "2026-03", {"axe": "PDP", "source": "spst"})


def _evenements(seed: int, jours: int = 60):
    return list(simuler(Parametres(assures_par_an=400), T0, T0 + timedelta(days=jours), seed=seed))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), melange=st.randoms(use_true_random=False), renvois=st.integers(0, 30))
def test_live_totals_equal_a_recount_whatever_the_order_and_the_resends(seed, melange, renvois):
    evs = _evenements(seed, jours=20)
    messages = []
    for ev in evs:
        if ev.nature == "signalement":
            sid = ev.record["signalement_id"]
            messages += [("signalement", sid, ev.record), ("affectation", sid, affectation_simulee(ev.record))]
        else:
            messages.append(("suivi", cle_suivi(ev.record), ev.record))
    messages += [melange.choice(messages) for _ in range(renvois)] if messages else []
    melange.shuffle(messages)  # topics interleave in any order; partners and Kafka resend
    acc = calcul.Accumulateur()
    for m in messages:
        acc.appliquer(*m)
    attendu = accumuler_simulation(evs).recompter()
    assert _non_nuls(acc.totaux) == _non_nuls(attendu)
    assert _non_nuls(acc.recompter()) == _non_nuls(attendu)


def _non_nuls(c):
    return {k: n for k, n in c.items() if n}  # negatives kept: a figure below zero is a bug


def test_a_later_affectation_moves_the_backlog_and_an_escalation_counts_once():
    ev = _evenements(1)[0]
    s = ev.record
    sid = s["signalement_id"]
    acc = calcul.Accumulateur()
    acc.appliquer("signalement", sid, s)
    a0 = affectation_simulee(s)
    acc.appliquer("affectation", sid, a0)
    esc = {**a0, "sequence": 1, "nature": "escalade", "file": "12-URGENT", "decide_le": s["recu_le"] + timedelta(days=11)}
    acc.appliquer("affectation", sid, esc)
    acc.appliquer("affectation", sid, esc)  # resent
    acc.appliquer("affectation", sid, a0)  # late, older: ignored
    v = publication.valeurs(acc.totaux)
    assert v[f"backlog|courant|courant|departement=12,file={a0['file']}"] == 0
    assert v["backlog|courant|courant|departement=12,file=12-URGENT"] == 1
    assert v[f"escalades|annee|{s['recu_le'].year}|"] == 1


def test_small_counts_are_masked_only_in_cells_narrower_than_a_departement():
    maj = datetime.now(UTC)
    fin = publication.agregats("backlog|courant|courant|departement=12,file=12-PDP", 3, 5, maj)[0]
    assert fin["valeur"] is None and fin["masque"] is True
    dep = publication.agregats("backlog|courant|courant|departement=12", 3, 5, maj)[0]
    assert dep["valeur"] == 3 and dep["masque"] is False
    assert publication.agregats("backlog|courant|courant|assistant=ass-1", 0, 5, maj)[0]["valeur"] == 0
    assert publication.agregats("backlog|courant|courant|assistant=ass-1", 5, 5, maj)[0]["valeur"] == 5
    delais = publication.agregats("delai-premier-contact|mois|2026-03|file=12-PDP", {2: 1, 9: 2}, 5, maj)
    assert all(r["masque"] and r["valeur"] is None for r in delais)


def test_delay_percentiles_use_the_nearest_rank():
    hist = {1: 5, 3: 3, 20: 2}
    assert publication.percentile(hist, 0.5) == 1
    assert publication.percentile(hist, 0.9) == 20
    recs = {r["indicateur"]: r["valeur"] for r in publication.agregats("delai-premier-contact|annee|2026|", hist, 5, T0)}
    assert recs == {"delai-premier-contact-p50": 1, "delai-premier-contact-p90": 20, "delai-premier-contact-moyenne": 5.4}


def test_a_collective_action_counts_its_sessions_and_participants():
    acc = calcul.Accumulateur()
    action = {"suivi_id": "a1", "signalement_id": None, "type": "action-collective", "survenu_le": T0,
              "seances": 7, "participants": 8}
    acc.appliquer("suivi", "action:a1", action)
    acc.appliquer("suivi", "action:a1", action)
    v = publication.valeurs(acc.totaux)
    assert (v["actions-collectives|annee|2026|"], v["seances-collectives|annee|2026|"], v["participants-collectifs|annee|2026|"]) == (1, 7, 8)


def test_simulator_is_reproducible_and_time_ordered():
    a, b = _evenements(5), _evenements(5)
    assert [e.record.get("suivi_id") or e.record["signalement_id"] for e in a] == \
        [e.record.get("suivi_id") or e.record["signalement_id"] for e in b]
    assert all(x.t <= y.t for x, y in itertools.pairwise(a))


def test_simulated_cpam_signalements_pass_the_cpam_connector_unchanged():
    import json
    import secrets

    from aiguillage.demo.simulateur import cpam_natif
    from aiguillage.domain import Signalement
    from connectors.cpam import CpamConnector

    cle = secrets.token_bytes(32)
    evs = [e for e in _evenements(3, jours=120) if e.nature == "signalement" and e.record["source"] == "cpam"]
    assert evs
    for ev in evs[:10]:
        lus = list(CpamConnector().lire(json.dumps(cpam_natif(ev.record, ev.nir)).encode(), ev.t, cle))
        assert len(lus) == 1 and isinstance(lus[0], Signalement), lus
        s = lus[0]
        assert (s.signalement_id, s.sexe.value, s.departement, s.risque.value, s.axe_suggere.value) == (
            ev.record["signalement_id"], ev.record["sexe"], ev.record["departement"],
            ev.record["risque"], ev.record["axe_suggere"])
