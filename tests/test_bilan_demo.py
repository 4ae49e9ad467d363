"""A simulated year at the Aveyron's scale gives a bilan whose proportions are the simulator's
settings, within sampling error; ``aiguillage bilan`` writes it from the SQL table."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from aiguillage.agregats import bilan, lecture, publication
from aiguillage.cli import app
from aiguillage.demo.parametres import Parametres, normaliser
from aiguillage.demo.simulateur import simuler
from sinks import db
from sinks.agregats import ecrire
from tests.agregats_util import accumuler_simulation

P = Parametres()
ANNEE = 2026


@pytest.fixture(scope="module")
def annee_simulee() -> list[dict]:
    # A warm-up year first, so that the bilan year has the steady flow of the seeds
    # (accompaniments begun the year before still hold entretiens and end this year).
    evs = simuler(P, datetime(ANNEE - 1, 1, 1, tzinfo=UTC), datetime(ANNEE + 1, 1, 1, tzinfo=UTC), seed=2023)
    acc = accumuler_simulation(evs)
    return publication.tout_publier(acc.totaux, publication.SEUIL_PAR_DEFAUT, datetime.now(UTC))


def _annee(rows: list[dict], territoire: str | None) -> list[dict]:
    f = lecture.Filtre(periode_type="annee", periode=str(ANNEE), territoire=territoire)
    return [r for r in rows if r["periode_type"] == "annee" and r["periode"] == str(ANNEE) and f.garde(r["dimensions"])]


def _proche(mesure: float, attendu: float, n: float, sigmas: float = 4.0) -> None:
    ecart = sigmas * math.sqrt(attendu * (1 - attendu) / n)
    assert abs(mesure - attendu) <= ecart, f"{mesure:.3f} vs {attendu:.3f} ± {ecart:.3f} (n={n:.0f})"


def test_demo_year_bilan_matches_the_simulator_settings(annee_simulee):
    b = bilan.bilan(_annee(annee_simulee, "12"), ANNEE, "12")
    m = b.mesures
    f = {(r["indicateur"], tuple(sorted((k, v) for k, v in r["dimensions"].items() if k != "departement"))): r["valeur"]
         for r in _annee(annee_simulee, "12")}
    assures, entretiens = f[("assures-accompagnes", ())], f[("entretiens", ())]
    # The Aveyron's scale: 1 618 assurés, 4 368 entretiens in 2023.
    assert abs(assures - 1618) < 4 * math.sqrt(1618)
    assert abs(entretiens - 4368) < 4 * math.sqrt(4368) + 0.05 * 4368
    _proche(m["axes.PDP"], 0.59, assures)
    _proche(m["sexes.F"], P.sexes["F"], assures)
    for k, p in normaliser(P.tranches_age).items():
        _proche(m[f"tranches_age.{k}"], p, assures)
    for k, p in normaliser(P.risques).items():
        _proche(m[f"risques.{k}"], p, assures)
    signalements = f[("signalements", ())]
    for k, p in normaliser(P.sources).items():
        _proche(m[f"sources.{k}"], p, signalements)
    externes = sum(v for (ind, dims), v in f.items() if ind == "signalements" and dims in
                   ((("source", "spst"),), (("source", "cap-emploi"),), (("source", "mdph"),)))
    _proche(m["externes.spst"], 0.69, externes)  # [LR] 69% of external referrals from SPST
    for k, p in normaliser(P.modes_entretien).items():
        _proche(m[f"modes.{k}"], p, entretiens)
    preconisations = f[("preconisations", ())]
    for k, p in normaliser(P.preconisations).items():
        _proche(m[f"preconisations.{k}"], p, preconisations)
    attendu_par_assure = sum(P.axes[a] * P.entretiens_par_assure[a] for a in P.axes)
    assert abs(m["entretiens_par_assure"] - attendu_par_assure) < 0.15
    maintien = sum(P.issues_pdp[k] for k in bilan.MAINTIENS)
    clos_pdp = sum(v for (ind, dims), v in f.items() if ind == "clotures" and ("axe", "PDP") in dims
                   and len(dims) == 2 and dict(dims)["issue"] not in ("refus", "annulation"))
    _proche(m["maintien_pdp"], maintien, clos_pdp)
    assert 6 <= m["duree_mois.PDP"] <= 13  # [LR] "entre 6 et 13 mois"
    assert 2 <= m["duree_mois.SPS"] <= 4  # [MP] "3 mois"
    md = b.markdown()
    for titre in ("Chiffres clés", "PDP", "SPS", "Profil des assurés", "Signalements reçus par source",
                  "Entretiens", "Préconisations", "Issues des accompagnements"):
        assert f"## {titre}" in md or titre in md


def test_bilan_command_writes_markdown_and_html_from_the_sql_table(annee_simulee, sqlite_url, tmp_path, monkeypatch):
    engine = sa.create_engine(sqlite_url)
    db.upgrade(sqlite_url)
    with engine.begin() as conn:
        ecrire(conn, annee_simulee)
    engine.dispose()
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", sqlite_url)
    res = CliRunner().invoke(app, ["bilan", "--annee", str(ANNEE), "--territoire", "12", "--sortie", str(tmp_path)])
    assert res.exit_code == 0, res.output
    md = (tmp_path / f"bilan-{ANNEE}-12.md").read_text(encoding="utf-8")
    html = (tmp_path / f"bilan-{ANNEE}-12.html").read_text(encoding="utf-8")
    assert md.startswith(f"# Bilan d’activité {ANNEE} du service social — département 12")
    assert "<h2>Profil des assurés</h2>" in html and "<table>" in html
    assert "1 action(s) collective(s), 7 séances, 8 participants" in md  # [AV] 1 action, 7 séances
    res = CliRunner().invoke(app, ["bilan", "--annee", "1999", "--sortie", str(tmp_path)])
    assert res.exit_code == 1 and "no figure for 1999" in res.output
