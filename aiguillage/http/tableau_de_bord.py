"""The figures over HTTP: ``GET /v1/agregats`` (JSON) and the dashboard at ``/``.

The dashboard is static HTML, JS and CSS shipped in ``aiguillage/static`` (no
CDN: the machines are offline); it reads ``/v1/agregats`` and refreshes itself. The page and
its files hold no data and stay open; the figures need ``lire-agregats`` (pilotage,
responsable, admin), sent by the page as the bearer token pasted at its sign-in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from aiguillage.agregats.lecture import Filtre, lire, territoires
from aiguillage.agregats.periodes import COURANT, PERIODES
from aiguillage.auth.droits import Droit, Personne
from aiguillage.auth.garde import Garde

STATIC = Path(__file__).resolve().parent.parent / "static"
FICHIERS = {"tableau.js": "text/javascript", "tableau.css": "text/css"}


def _liste(valeur: str | None) -> tuple[str, ...] | None:
    if valeur is None:
        return None
    return tuple(v.strip() for v in valeur.split(",") if v.strip())


def router(engine: Engine, garde: Garde) -> APIRouter:
    api = APIRouter()
    lire_agregats = Depends(garde.exige(Droit.LIRE_AGREGATS))

    @api.get("/v1/agregats")
    def get_agregats(
        indicateur: str | None = Query(None, description="one or more, comma-separated: signalements,entretiens"),
        periode_type: str | None = Query(None, description="jour | semaine | mois | annee | courant"),
        periode: str | None = Query(None, description="2026-11-23, 2026-W48, 2026-11, 2026 or courant"),
        depuis: str | None = Query(None, description="first period, inclusive (same form as periode)"),
        jusqu_a: str | None = Query(None, description="last period, inclusive"),
        territoire: str | None = Query(None, description="a département (absent: hub-wide figures)"),
        axe: str | None = Query(None, description="PDP | SPS"),
        par: str | None = Query(None, description="exact breakdown, comma-separated (source, file...); empty: totals"),
        _: Personne = lire_agregats,
    ) -> dict[str, Any]:
        if periode_type is not None and periode_type not in (*PERIODES, COURANT):
            raise HTTPException(422, f"periode_type must be one of {[*PERIODES, COURANT]}")
        if axe is not None and axe not in ("PDP", "SPS"):
            raise HTTPException(422, "axe must be PDP or SPS")
        f = Filtre(_liste(indicateur) or (), periode_type, periode, depuis, jusqu_a, territoire, axe, _liste(par))
        try:
            rows = lire(engine, f)
        except (OperationalError, ProgrammingError):
            rows = []  # the sink has not created the table yet: no figure so far
        return {"agregats": rows}

    @api.get("/v1/agregats/territoires")
    def get_territoires(_: Personne = lire_agregats) -> list[str]:
        try:
            return territoires(engine)
        except (OperationalError, ProgrammingError):
            return []

    @api.get("/", include_in_schema=False)
    def tableau() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @api.get("/static/{nom}", include_in_schema=False)
    def statique(nom: str) -> FileResponse:
        if nom not in FICHIERS:
            raise HTTPException(404, "no such file")
        return FileResponse(STATIC / nom, media_type=FICHIERS[nom])

    return api
