"""``aiguillage demo``: play the simulator against a running hub, at a settable pace.

Signalements go to the partner's ingress topic as canonical Avro with the
Publieur (the transport partners with a Kafka client use); CPAM ones are posted
in the CPAM's native JSON through the gateway instead when ``--passerelle`` is
given and time runs at real speed (the gateway stamps ``recu_le`` with the real
clock, which a compressed year cannot match). Suivis go to ``suivis``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from aiguillage import nir, topics
from aiguillage.codec import AvroCodec
from aiguillage.demo.parametres import Parametres
from aiguillage.demo.simulateur import cpam_natif, simuler
from aiguillage.domain import Signalement, Suivi
from aiguillage.kafka import Publieur

MINUTES_PAR_AN = 365 * 24 * 60


async def jouer(
    bootstrap: str,
    debut: datetime,
    fin: datetime,
    compression: float,
    params: Parametres,
    seed: int = 0,
    cle_pseudonyme: bytes | None = None,
    passerelle: str | None = None,
    console: Console | None = None,
    jeton: str | None = None,
    codec: AvroCodec | None = None,
) -> dict[str, int]:
    """Send the simulated events; ``compression`` simulated seconds per real second (0: no waiting)."""
    console = console or Console(stderr=True)
    pseudo = (lambda n: nir.pseudonymiser(n, cle_pseudonyme)) if cle_pseudonyme else None
    via_passerelle = passerelle is not None and compression == 1
    publieur = Publieur(bootstrap, codec)
    compte = {"signalements": 0, "suivis": 0, "via-passerelle": 0}
    depart = time.monotonic()
    total = (fin - debut).total_seconds()
    entetes = {"Authorization": f"Bearer {jeton}"} if jeton else {}
    async with httpx.AsyncClient(timeout=15, headers=entetes) as client:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[jour]}"),
                      console=console, transient=False) as bar:
            tache = bar.add_task("demo", total=total, jour="")
            try:
                for ev in simuler(params, debut, fin, seed=seed, pseudonymiser=pseudo):
                    ecoule = (ev.t - debut).total_seconds()
                    if compression > 0:
                        attente = depart + ecoule / compression - time.monotonic()
                        if attente > 0:
                            await asyncio.sleep(attente)
                    await _envoyer(ev, publieur, client, passerelle if via_passerelle else None, compte)
                    bar.update(tache, completed=ecoule, jour=f"{ev.t:%Y-%m-%d}  {compte['signalements']} signalements, {compte['suivis']} suivis")
            finally:
                await publieur.close()
    return compte


async def _envoyer(ev: Any, publieur: Publieur, client: httpx.AsyncClient, passerelle: str | None,
                   compte: dict[str, int]) -> None:
    if ev.nature == "signalement":
        s = Signalement.model_validate(ev.record)
        if passerelle and s.source.value == "cpam" and ev.nir:
            r = await client.post(f"{passerelle}/v1/signalements/cpam", json=cpam_natif(ev.record, ev.nir))
            r.raise_for_status()
            compte["via-passerelle"] += 1
        else:
            await publieur.send(topics.entrants(s.source), "Signalement", s.to_avro(), key=s.cle())
        compte["signalements"] += 1
    else:
        suivi = Suivi.model_validate(ev.record)
        await publieur.send(topics.SUIVIS, "Suivi", suivi.to_avro(), key=suivi.cle())
        compte["suivis"] += 1


def bornes(jours: int, fin: datetime) -> tuple[datetime, datetime]:
    return fin - timedelta(days=jours), fin
