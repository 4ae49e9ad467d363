"""The dashboard, rendered by headless Chromium: the figures on the page are GET /v1/agregats's.

The SQL table is filled the way its sink fills it (rows as published, masking included),
from a simulated year; the page is served by the real gateway process.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aiguillage.agregats import publication
from aiguillage.demo.parametres import Parametres
from aiguillage.demo.simulateur import simuler
from sinks import db
from sinks.agregats import ecrire
from tests.agregats_util import accumuler_simulation
from tests.oidc_util import garde

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.kafka
SANS_CHROMIUM = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="!!! no /usr/bin/chromium")


def _remplir(database_url: str) -> None:
    evs = simuler(Parametres(), datetime(2025, 7, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC), seed=7)
    acc = accumuler_simulation(evs)
    # Two caseworkers with a handful of cases: below the threshold, so masked on the page.
    acc.totaux[("backlog|courant|courant|assistant=ass-rodez-2,departement=12", None)] += 3
    acc.totaux[("backlog|courant|courant|assistant=ass-millau-1,departement=12", None)] += 2
    acc.totaux[("backlog|courant|courant|assistant=ass-rodez-1", None)] += 42
    acc.totaux[("backlog|courant|courant|assistant=ass-rodez-2", None)] += 3
    db.upgrade(database_url)  # the sinks' migrations (they create the table once merged)
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        ecrire(conn, publication.tout_publier(acc.totaux, publication.SEUIL_PAR_DEFAUT, datetime.now(UTC)))
    engine.dispose()


def _chiffres(texte: str) -> str:
    return re.sub(r"[^\d,]", "", texte)


def _navigateur(pw):
    return pw.chromium.launch(
        executable_path=CHROMIUM,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


def _se_connecter(page, base_url: str, jeton: str) -> None:
    """The sign-in step as a person does it: the page asks for a token, one pastes it."""
    page.goto(f"{base_url}/")
    page.wait_for_selector("body[data-pret=connexion]", timeout=30_000)
    assert page.is_visible("#connexion") and not page.is_visible("#tableau")
    page.fill("#jeton", jeton)
    page.click("#se-connecter")
    page.wait_for_selector("body[data-pret=oui]", timeout=30_000)


@SANS_CHROMIUM
def test_dashboard_shows_the_api_figures_and_masks_small_ones(hub_factory, sqlite_url, tmp_path, emetteur):
    from playwright.sync_api import sync_playwright

    _remplir(sqlite_url)
    hub = hub_factory(sqlite_url, components=("gateway",))
    pilotage = emetteur.jeton("pilotage")
    api = {r["cle"]: r for r in httpx.get(f"{hub.base_url}/v1/agregats", timeout=30,
                                          headers={"Authorization": f"Bearer {pilotage}"}).json()["agregats"]}
    assert api["signalements|annee|2026|"]["valeur"] > 500

    with sync_playwright() as pw:
        browser = _navigateur(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _se_connecter(page, hub.base_url, pilotage)
        # pilotage: the figures only, none of the personal rows' sections
        assert not page.is_visible("#carte-files") and not page.is_visible("#carte-charges")
        assert "pilotage" in page.inner_text("#qui")
        elements = page.eval_on_selector_all(
            "[data-cle]",
            "els => els.map(e => ({cle: e.dataset.cle, valeur: e.dataset.valeur, masque: e.dataset.masque,"
            " texte: e.tagName === 'SPAN' ? e.textContent : null}))",
        )
        cartes = page.eval_on_selector_all(".chiffre", "els => els.map(e => e.innerText)")
        captures = Path(os.environ.get("AIGUILLAGE_CAPTURES", tmp_path))
        captures.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(captures / "tableau-de-bord.png"), full_page=True)
        browser.close()

    assert len(elements) > 40
    for e in elements:
        row = api[e["cle"]]  # every figure on the page is one of the API's
        if e["masque"]:
            assert row["masque"] and row["valeur"] is None
            continue
        assert float(e["valeur"]) == row["valeur"], e["cle"]
        if e["texte"] is not None:  # the number a manager reads
            lu = _chiffres(e["texte"]).replace(",", ".")
            assert float(lu) == row["valeur"], (e["cle"], e["texte"])
    masques = [e for e in elements if e["masque"]]
    assert {e["cle"] for e in masques} == {"backlog|courant|courant|assistant=ass-rodez-2"}
    signalements = next(c for c in cartes if "signalements reçus" in c)
    assert _chiffres(signalements.split("\n")[0]) == str(int(api["signalements|annee|2026|"]["valeur"]))
    assert any("%" in c and "maintenus en emploi" in c for c in cartes)


def _affectations(database_url: str) -> list[str]:
    """Waiting signalements of the Aveyron's teams and one of Toulouse's, as the sink writes them."""
    import uuid

    engine = sa.create_engine(database_url)
    ids = []
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for i, (equipe, assistant) in enumerate([("12-rodez", "12-rodez.ass1"), ("12-rodez", None),
                                                 ("12-millau", "12-millau.ass2"), ("31-toulouse", None)]):
            sid = str(uuid.uuid4())
            ids.append(sid)
            conn.execute(db.affectations.insert().values(
                signalement_id=sid, sequence=0, nature="initiale", source="cpam", source_ref=f"TDB-{i}",
                nir_pseudonyme="0" * 64, recu_le=now, departement=equipe[:2], file=f"{equipe}-PDP", equipe=equipe,
                axe="PDP", priorite=2 + i, assistant=assistant, regle="test", config_version="t",
                explication="test", echeance_premier_contact=now.date(), decide_le=now, statut="requested"))
    engine.dispose()
    return ids


@SANS_CHROMIUM
def test_dashboard_signed_in_as_responsable_shows_its_files_and_caseloads(hub_factory, sqlite_url, tmp_path,
                                                                         emetteur):
    from playwright.sync_api import sync_playwright

    _remplir(sqlite_url)
    _affectations(sqlite_url)
    hub = hub_factory(sqlite_url, components=("gateway",))
    with sync_playwright() as pw:
        browser = _navigateur(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _se_connecter(page, hub.base_url, emetteur.jeton("responsable-12"))
        page.wait_for_selector("#table-files", timeout=30_000)
        files = page.eval_on_selector_all("#table-files tr[data-file]", "els => els.map(e => e.dataset.file)")
        equipes = page.eval_on_selector_all("#charges table", "els => els.map(e => e.dataset.equipe)")
        charges_rodez = page.inner_text("#charges table[data-equipe='12-rodez']")
        assert page.is_visible("#chiffres")  # a responsable sees the figures too
        captures = Path(os.environ.get("AIGUILLAGE_CAPTURES", tmp_path))
        captures.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(captures / "tableau-de-bord-responsable.png"), full_page=True)
        # A reload keeps the session (sessionStorage); signing out forgets the token.
        page.reload()
        page.wait_for_selector("body[data-pret=oui]", timeout=30_000)
        page.click("#se-deconnecter")
        page.wait_for_selector("body[data-pret=connexion]", timeout=10_000)
        assert page.evaluate("sessionStorage.length") == 0
        # A bad token is refused at sign-in, with the reason.
        page.fill("#jeton", emetteur.jeton("responsable-12", duree=-600))
        page.click("#se-connecter")
        page.wait_for_selector("body[data-pret=connexion]", timeout=10_000)
        page.wait_for_function("document.getElementById('erreur-connexion').textContent.includes('expired')")
        browser.close()
    assert sorted(files) == ["12-millau-PDP", "12-rodez-PDP"]  # not Toulouse's: another territory
    assert equipes == ["12-rodez", "12-millau"]
    assert "12-rodez.ass1" in charges_rodez


def _app(engine, emetteur):
    from fastapi import FastAPI

    from aiguillage.auth.garde import installer
    from aiguillage.http import tableau_de_bord

    app = FastAPI()
    installer(app)
    app.include_router(tableau_de_bord.router(engine, garde(emetteur)))
    return app


def test_api_filters_by_period_territory_axe_and_breakdown(sqlite_url, emetteur):
    from fastapi.testclient import TestClient

    _remplir(sqlite_url)
    engine = db.make_engine(sqlite_url)
    client = TestClient(_app(engine, emetteur), headers=emetteur.entete("pilotage"))

    def get(**params):
        r = client.get("/v1/agregats", params=params)
        assert r.status_code == 200, r.text
        return r.json()["agregats"]

    totaux = get(indicateur="signalements", periode_type="annee", par="")
    assert {r["periode"] for r in totaux} == {"2025", "2026"} and all(r["dimensions"] == {} for r in totaux)
    dep = get(indicateur="signalements", periode_type="annee", periode="2026", territoire="12", par="")
    assert dep[0]["dimensions"] == {"departement": "12"}
    assert dep[0]["valeur"] == next(r["valeur"] for r in totaux if r["periode"] == "2026")  # all in Aveyron
    par_source = get(indicateur="signalements", periode_type="semaine", depuis="2026-W10", jusqu_a="2026-W12", par="source")
    assert {r["periode"] for r in par_source} == {"2026-W10", "2026-W11", "2026-W12"}
    assert {tuple(r["dimensions"]) for r in par_source} == {("source",)}
    pdp = get(indicateur="clotures", periode_type="annee", periode="2026", axe="PDP", par="issue")
    assert pdp and all(r["dimensions"]["axe"] == "PDP" and set(r["dimensions"]) == {"axe", "issue"} for r in pdp)
    assert client.get("/v1/territoires/x").status_code == 404
    assert client.get("/v1/agregats/territoires").json() == ["12"]
    assert client.get("/v1/agregats", params={"periode_type": "siecle"}).status_code == 422
    engine.dispose()


def test_api_answers_an_empty_list_before_the_sink_made_its_table(sqlite_url, emetteur):
    from fastapi.testclient import TestClient

    client = TestClient(_app(db.make_engine(sqlite_url), emetteur))
    assert client.get("/v1/agregats", headers=emetteur.entete("pilotage")).json() == {"agregats": []}


def test_the_figures_need_a_staff_token_with_the_right(sqlite_url, emetteur):
    from fastapi.testclient import TestClient

    client = TestClient(_app(db.make_engine(sqlite_url), emetteur))
    for route in ("/v1/agregats", "/v1/agregats/territoires"):
        r = client.get(route)
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="aiguillage"'
        assert client.get(route, headers=emetteur.entete("assistant-toulouse")).json()["droit"] == "lire-agregats"
        for role in ("pilotage", "responsable-31", "admin"):
            assert client.get(route, headers=emetteur.entete(role)).status_code == 200
    assert client.get("/").status_code == 200  # the page itself holds no data: it signs in
