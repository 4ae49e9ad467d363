"""``aiguillage routing explain`` and ``check``, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aiguillage.cli import app
from tests.routing_builders import sig

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def test_explain_on_the_readme_example_prints_the_rule_and_the_sentence():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "aiguillage routing explain connectors/exemples/cpam.json" in readme
    result = runner.invoke(app, ["routing", "explain", str(ROOT / "connectors/exemples/cpam.json")])
    assert result.exit_code == 0, result.output
    assert "retard-ij" in result.output and "31-toulouse-SPS" in result.output
    assert "Règle « retard-ij »" in result.output and "premier contact sous 7 jours" in result.output
    assert "275013155512368" not in result.output  # the example's NIR is never printed


def test_explain_reads_a_canonical_signalement_too(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(sig("X", consentement=False).model_dump_json(), encoding="utf-8")
    result = runner.invoke(app, ["routing", "explain", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["file"] == "31-recueil-consentement" and out["regle"] == "consentement-manquant"
    assert "nir_pseudonyme" not in out


def test_check_accepts_the_shipped_file_and_names_the_line_of_an_error(tmp_path):
    ok = runner.invoke(app, ["routing", "check"])
    assert ok.exit_code == 0 and "13 territoires" in ok.output
    bad = tmp_path / "routing.yaml"
    bad.write_text((ROOT / "aiguillage/routing.yaml").read_text(encoding="utf-8").replace("capacite: 40", "capacite: -1", 1))
    result = runner.invoke(app, ["routing", "check", str(bad)])
    assert result.exit_code == 1
    assert "routing.yaml:" in result.output and "capacite: Input should be greater than or equal to 0" in result.output
