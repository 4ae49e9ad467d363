"""CLI commands of the figures: ``bilan``, ``demo`` (and the provisional aggregates writer)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from aiguillage.config import Settings

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

    settings = Settings()
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


def demo(
    annee_en_minutes: float = typer.Option(10.0, help="How many real minutes a simulated year lasts (0: as fast as possible)."),
    assures_par_an: int = typer.Option(1618, help="Assurés accompagnés per year (Aveyron 2023: 1 618)."),
    jours: int = typer.Option(365, help="Simulated days, ending now."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same traffic."),
    passerelle: str = typer.Option(None, help="Gateway URL: CPAM signalements are posted there when time is not compressed."),
    jeton: str = typer.Option(None, envvar="AIGUILLAGE_DEMO_JETON_CPAM", help="The CPAM's bearer token for the gateway."),
) -> None:
    """Simulated partners and caseworkers against a running hub (needs AIGUILLAGE_BROKER).

    Traffic follows the seeds (aiguillage/demo/parametres.py cites each figure).
    Example:  aiguillage demo --annee-en-minutes 5 --passerelle http://127.0.0.1:8080
    """
    from dataclasses import replace

    from aiguillage.demo.parametres import Parametres
    from aiguillage.demo.runner import MINUTES_PAR_AN, bornes, jouer
    from aiguillage.schema_registry import make_codec

    settings = Settings()
    if not settings.broker:
        console.print("[bold red]error:[/] AIGUILLAGE_BROKER is not set (e.g. kafka://127.0.0.1:9092)")
        raise typer.Exit(2)
    compression = MINUTES_PAR_AN / annee_en_minutes if annee_en_minutes > 0 else 0.0
    cle = settings.pseudonym_key.get_secret_value().encode() if settings.pseudonym_key else None
    debut, fin = bornes(jours, datetime.now(UTC))
    console.print(f"demo: {jours} simulated days from {debut:%Y-%m-%d}, a year in {annee_en_minutes:g} min")
    compte = asyncio.run(jouer(settings.bootstrap_servers(), debut, fin, compression,
                               replace(Parametres(), assures_par_an=assures_par_an), seed, cle, passerelle, console,
                               jeton=jeton, codec=make_codec(settings)))
    console.print(f"demo done: {compte}")


def register(app: typer.Typer) -> None:
    app.command()(bilan)
    app.command()(demo)
