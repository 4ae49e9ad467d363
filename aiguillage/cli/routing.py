"""``aiguillage routing``: explain a decision, check a configuration. Nothing is published."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from aiguillage.dlq import Rejet
from aiguillage.domain import Signalement, Source
from aiguillage.routing.config_file import ConfigInvalide, Moteur, charger

app = typer.Typer(help="The routing engine: rules, territories, teams.", no_args_is_help=True)


def _moteur(config: Path | None) -> Moteur:
    try:
        return charger(config)
    except ConfigInvalide as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def lire_signalement(path: Path, source: str | None) -> Signalement:
    """A canonical Signalement (JSON), or a partner's native example read by its connector."""
    from connectors.registry import CONNECTORS

    body = path.read_bytes()
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and "signalement_id" in data and "nir_pseudonyme" in data:
        return Signalement.model_validate(data)
    nom = source or path.stem.split(".")[0]
    try:
        connector = CONNECTORS[Source(nom)]
    except (ValueError, KeyError):
        raise typer.BadParameter(
            f"{path.name} is not a canonical signalement and {nom!r} is not a partner with a connector; "
            f"give --source, one of {sorted(s.value for s in CONNECTORS)}"
        ) from None
    # A throw-away pseudonym key: the NIR is checked, never printed, and nothing is published.
    lus = list(connector.lire(body, datetime.now(UTC), secrets.token_bytes(32)))
    if not lus or isinstance(lus[0], Rejet):
        detail = lus[0].reason if lus and isinstance(lus[0], Rejet) else "no record in the file"
        raise typer.BadParameter(f"{path.name}: {detail}")
    return lus[0]


@app.command()
def explain(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A canonical signalement (JSON) or a partner's example.")],
    source: Annotated[str | None, typer.Option(help="The partner whose format FILE is in (default: guessed from the file name).")] = None,
    config: Annotated[Path | None, typer.Option(help="Routing YAML (default: AIGUILLAGE_ROUTING_FILE, else the shipped one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the Affectation as JSON.")] = False,
) -> None:
    """Print the decision a signalement would get: rule, sentence, file, priorité. Publishes nothing.

    Example:  aiguillage routing explain connectors/exemples/cpam.json
    """
    from aiguillage.config import read_settings
    from aiguillage.routing.affectation import orienter, placer

    moteur = _moteur(config or read_settings().routing_file)
    s = lire_signalement(file, source)
    o = orienter(moteur, s, datetime.now(UTC))
    a = o.affectation
    if as_json:
        typer.echo(json.dumps(a.model_dump(mode="json", exclude={"nir_pseudonyme"}), ensure_ascii=False, indent=2))
        return
    lignes = [
        ("signalement", f"{a.signalement_id} ({a.source.value} {a.source_ref})"),
        ("règle", f"{a.regle} (n° {o.tri.rang})"),
        ("axe", a.axe.value),
        ("priorité", str(a.priorite)),
        ("file", a.file),
        ("équipe", a.equipe or "aucune"),
        ("échéance", f"{a.echeance_premier_contact} (premier contact sous {o.tri.delai_jours} jours)"),
    ]
    if o.a_placer and a.equipe:
        p = placer(moteur, a.equipe, a.axe, lambda _: 0)
        lignes.append(("assistant", f"selon les charges au moment du routage ({p.assistant or 'personne'} si toutes étaient vides)"))
    lignes += [("configuration", moteur.version), ("pourquoi", a.explication)]
    for k, v in lignes:
        typer.echo(f"{k:<14}{v}")


@app.command()
def check(
    config: Annotated[Path | None, typer.Argument(help="Routing YAML (default: the shipped aiguillage/routing.yaml).")] = None,
) -> None:
    """Validate a routing configuration; errors name the line and the field.

    Example:  aiguillage routing check aiguillage/routing.yaml
    """
    m = _moteur(config)
    c = m.config
    typer.echo(
        f"OK {m.nom}: version {m.version}, {len(c.territoires)} territoires, {len(m.equipes)} équipes, "
        f"{len(m.assistants)} assistants, {len(c.regles)} règles"
    )
