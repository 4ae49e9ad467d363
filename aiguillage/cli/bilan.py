"""``aiguillage bilan``: the yearly activity report, from the SQL figures."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from aiguillage.config import read_settings

console = Console(stderr=True)
COLLECTIFS = ("actions-collectives", "seances-collectives", "participants-collectifs")


def bilan(
    annee: int = typer.Option(..., "--annee", help="The year of the report, e.g. 2026."),
    territoire: str = typer.Option(None, "--territoire", help="A département (e.g. 12); default: every territory."),
    sortie: str = typer.Option(".", "--sortie", help="Directory where bilan-<année>[-<dép>].md and .html go."),
) -> None:
    """Write the yearly bilan (Markdown and HTML) from the SQL figures (AIGUILLAGE_DATABASE_URL).

    Example:  aiguillage bilan --annee 2026 --territoire 12 --sortie rapports/
    """
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from aiguillage.agregats import bilan as rapport
    from aiguillage.agregats.lecture import Filtre, lire
    from sinks import db

    settings = read_settings()
    engine = db.make_engine(settings.database_url)
    try:
        rows = lire(engine, Filtre(periode_type="annee", periode=str(annee), territoire=territoire))
        if territoire:  # collective actions are not broken down by territory
            rows += lire(engine, Filtre(indicateurs=COLLECTIFS, periode_type="annee", periode=str(annee)))
    except (OperationalError, ProgrammingError):
        rows = []
    finally:
        engine.dispose()
    if not rows:
        console.print(f"[bold red]error:[/] no figure for {annee}{' in ' + territoire if territoire else ''} in the database")
        raise typer.Exit(1)
    b = rapport.bilan(rows, annee, territoire)
    dossier = Path(sortie)
    dossier.mkdir(parents=True, exist_ok=True)
    base = dossier / f"bilan-{annee}{'-' + territoire if territoire else ''}"
    base.with_suffix(".md").write_text(b.markdown(), encoding="utf-8")
    base.with_suffix(".html").write_text(b.html(), encoding="utf-8")
    console.print(f"wrote {base}.md and {base}.html")


def register(app: typer.Typer) -> None:
    app.command()(bilan)
