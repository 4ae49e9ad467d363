"""Properties of routing, over generated signalements and generated case histories."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguillage.domain import Axe, Motif, Risque, Situation, Source, TrancheAge
from aiguillage.routing.config_file import fichier_par_defaut
from tests.routing_builders import config_3_equipes, nir_pseudo, sig
from tests.routing_monde import Monde

LIEUX = [("31555", "31000", "31"), ("31483", "31800", "31"), ("34172", "34000", "34"), ("30189", "30000", "30"),
         ("12145", "12100", "12"), ("69123", "69001", "69"), ("48095", "48000", "48"), ("31999", "31990", "31")]


@st.composite
def signalements(draw, ref: str = "R"):
    commune, cp, dep = draw(st.sampled_from(LIEUX))
    age = draw(st.one_of(st.none(), st.integers(1930, 2008)))
    return sig(
        f"{ref}-{draw(st.integers(0, 10**9))}",
        source=draw(st.sampled_from(list(Source))),
        commune_insee=commune, code_postal=cp, departement=dep,
        annee_naissance=age,
        tranche_age=None if age is not None else draw(st.one_of(st.none(), st.sampled_from(list(TrancheAge)))),
        situation=draw(st.sampled_from(list(Situation))),
        risque=draw(st.sampled_from(list(Risque))),
        motif=draw(st.sampled_from(list(Motif))),
        arret_jours=draw(st.one_of(st.none(), st.integers(0, 800))),
        axe_suggere=draw(st.one_of(st.none(), st.sampled_from(list(Axe)))),
        consentement=draw(st.booleans()),
        nir_pseudonyme=nir_pseudo(draw(st.integers(0, 5))),  # a few assurés, so référent unique happens
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(signalements(), min_size=1, max_size=12, unique_by=lambda s: s.signalement_id))
def test_every_valid_signalement_gets_exactly_one_first_affectation(batch):
    with tempfile.TemporaryDirectory() as tmp:
        banc = Monde(Path(tmp), fichier_par_defaut().read_text(encoding="utf-8"))
        for s in batch:
            banc.signalement(s)
    firsts = Counter(a.signalement_id for a in banc.affectations if a.sequence == 0)
    assert firsts == Counter(s.signalement_id for s in batch)
    for a in banc.affectations:
        assert a.regle and a.config_version and a.explication and a.file


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("nouveau"), st.sampled_from(LIEUX[:3]), st.booleans(), st.integers(0, 8)),
        st.tuples(st.just("cloture"), st.integers(0, 1000)),
        st.tuples(st.just("reorientation"), st.integers(0, 1000), st.sampled_from(["axe:PDP", "axe:SPS", "equipe:31-b", "equipe:34-a"])),
    ),
    min_size=1,
    max_size=40,
)


def _invariants(banc: Monde) -> None:
    m = banc.config.moteur
    for eq_id, eq in m.equipes.items():
        for a in eq.assistants:
            assert banc.charges[f"{eq_id}|{a.id}"] <= a.capacite, f"{a.id} over capacity"
        attente = [d for d in banc.dossiers.values() if d.equipe == eq_id and d.en_attente]
        for d in attente:
            for a in eq.assistants:
                if d.axe in a.competences:
                    assert banc.charges[f"{eq_id}|{a.id}"] >= a.capacite, f"{a.id} has room while a {d.axe} signalement waits in {eq_id}"


def _recount(banc: Monde) -> Counter:
    latest = {}
    for a in banc.affectations:
        if a.signalement_id not in latest or a.sequence >= latest[a.signalement_id].sequence:
            latest[a.signalement_id] = a
    closed = {sid for sid, c in banc.cycles.items() if c["statut"] in ("completed", "cancelled", "rejected")}
    return Counter(f"{a.equipe}|{a.assistant}" for sid, a in latest.items()
                   if a.assistant and sid not in closed and a.dossier_id in (None, sid))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPERATIONS)
def test_no_caseworker_is_over_capacity_while_a_colleague_with_the_skill_has_room(ops):
    from aiguillage.domain import Suivi

    with tempfile.TemporaryDirectory() as tmp:
        banc = Monde(Path(tmp), config_3_equipes())
        n = 0
        for op in ops:
            ouverts = [sid for sid, c in banc.cycles.items() if c["statut"] not in ("completed", "cancelled", "rejected")]
            if op[0] == "nouveau":
                _, (commune, cp, dep), arret, assure = op
                n += 1
                banc.signalement(sig(f"N{n}", commune_insee=commune, code_postal=cp, departement=dep,
                                     arret_jours=30 if arret else None, nir_pseudonyme=nir_pseudo(f"p{assure}")))
            elif ouverts:
                sid = ouverts[op[1] % len(ouverts)]
                n += 1
                extra = {"issue": "maintien-poste"} if op[0] == "cloture" else {"reorientation_vers": op[2]}
                if op[0] == "cloture":
                    banc.suivi(Suivi(suivi_id=f"p{n}", signalement_id=sid, type="prise-en-charge", survenu_le=sig().recu_le))
                banc.suivi(Suivi(suivi_id=f"s{n}", signalement_id=sid, type=op[0], survenu_le=sig().recu_le, **extra))
            _invariants(banc)
        published = Counter({k: v for k, v in banc.charges.items() if v})
        assert published == _recount(banc)
