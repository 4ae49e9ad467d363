"""``aiguillage demo``: simulated partners and caseworkers against a running hub."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import typer
from rich.console import Console

from aiguillage.config import read_settings

console = Console(stderr=True)


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

    settings = read_settings()
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
    app.command()(demo)
