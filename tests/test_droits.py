"""The rights, pure: claim parsing and each check against each role."""

from __future__ import annotations

import pytest

from aiguillage.auth import droits
from aiguillage.auth.droits import Droit, Habilitation, Role, personne

TERRITOIRE_DE = {"31-toulouse": "31", "31-comminges": "31", "12-rodez": "12", "12-millau": "12"}


def p(*habs: str):
    return personne({"sub": "x", "aiguillage_roles": list(habs)})


def test_claim_format():
    assert p("assistant:31-toulouse").habilitations == (Habilitation(Role.ASSISTANT, "31-toulouse"),)
    assert p("responsable:territoire:31").habilitations == (Habilitation(Role.RESPONSABLE, territoire="31"),)
    assert p("responsable:12-rodez", "pilotage", "admin").roles == {Role.RESPONSABLE, Role.PILOTAGE, Role.ADMIN}
    # unknown roles, malformed entries and non-strings are ignored; a space-separated string is a list
    assert p("offline_access", "assistant", "assistant:", "pilotage:31", "responsable:territoire:").habilitations == ()
    assert personne({"sub": "y", "aiguillage_roles": "pilotage admin"}).roles == {Role.PILOTAGE, Role.ADMIN}
    assert personne({"sub": "y", "aiguillage_roles": [3, None]}).habilitations == ()
    assert personne({"sub": "y", "groups": ["admin"]}, claim="groups").roles == {Role.ADMIN}
    assert p("assistant:31-toulouse", "responsable:territoire:31").role == "assistant:31-toulouse responsable:territoire:31"


@pytest.mark.parametrize(("habs", "permis"), [
    (["assistant:31-toulouse"], {"lire-files", "poster-suivi"}),
    (["responsable:31-toulouse"], {"lire-files", "poster-suivi", "lire-charges", "reaffecter", "lire-agregats"}),
    (["pilotage"], {"lire-agregats"}),
    (["admin"], {"lire-agregats", "administrer", "lire-metriques"}),
    ([], set()),
])
def test_coarse_rights_by_role(habs, permis):
    assert set(droits.droits_de(p(*habs))) == permis
    for d in Droit:
        assert (droits.exige(p(*habs), d) is None) == (d.value in permis)


def test_files_by_team_and_territory():
    ass, resp_eq, resp_terr = p("assistant:31-toulouse"), p("responsable:31-toulouse"), p("responsable:territoire:31")
    assert droits.peut_lire_equipe(ass, "31-toulouse", TERRITOIRE_DE) is None
    assert droits.peut_lire_equipe(ass, "31-comminges", TERRITOIRE_DE) == "lire-files"
    assert droits.peut_lire_equipe(resp_eq, "31-comminges", TERRITOIRE_DE) == "lire-files"
    assert droits.peut_lire_equipe(resp_terr, "31-comminges", TERRITOIRE_DE) is None
    assert droits.peut_lire_equipe(resp_terr, "12-rodez", TERRITOIRE_DE) == "lire-files"
    assert droits.peut_lire_equipe(p("pilotage", "admin"), "31-toulouse", TERRITOIRE_DE) == "lire-files"
    assert droits.equipes_visibles(resp_terr, TERRITOIRE_DE) == {"31-toulouse", "31-comminges"}


def test_suivi_only_on_a_signalement_the_team_holds():
    ass = p("assistant:31-toulouse")
    assert droits.peut_poster_suivi(ass, "31-toulouse", TERRITOIRE_DE) is None
    assert droits.peut_poster_suivi(ass, "12-rodez", TERRITOIRE_DE) == "poster-suivi"
    assert droits.peut_poster_suivi(ass, None, TERRITOIRE_DE) == "poster-suivi"  # held by no team
    assert droits.peut_poster_suivi(p("responsable:territoire:12"), "12-millau", TERRITOIRE_DE) is None
    assert droits.peut_poster_suivi(p("pilotage"), "31-toulouse", TERRITOIRE_DE) == "poster-suivi"


def test_reassignment_within_the_team_or_the_territory():
    resp_eq, resp_terr = p("responsable:31-toulouse"), p("responsable:territoire:31")
    assert droits.peut_reaffecter(resp_eq, "31-toulouse", "31-toulouse", TERRITOIRE_DE) is None  # another axe
    assert droits.peut_reaffecter(resp_eq, "31-toulouse", "31-comminges", TERRITOIRE_DE) == "reaffecter"
    assert droits.peut_reaffecter(resp_terr, "31-toulouse", "31-comminges", TERRITOIRE_DE) is None
    assert droits.peut_reaffecter(resp_terr, "31-toulouse", "12-rodez", TERRITOIRE_DE) == "reaffecter"
    assert droits.peut_reaffecter(p("assistant:31-toulouse"), "31-toulouse", "31-toulouse", TERRITOIRE_DE) == "reaffecter"
    assert droits.peut_lire_charges(resp_terr, "31-comminges", TERRITOIRE_DE) is None
    assert droits.peut_lire_charges(p("assistant:31-toulouse"), "31-toulouse", TERRITOIRE_DE) == "lire-charges"
