"""``GET /v1/moi``: who the token says you are and the rights it gives (the dashboard reads it
to show only what your role may see). Any valid staff token; nothing personal about others."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from aiguillage.auth import droits
from aiguillage.auth.droits import Personne
from aiguillage.auth.garde import Garde


def router(garde: Garde) -> APIRouter:
    api = APIRouter()

    def identifie(request: Request) -> Personne:
        return garde.personne(request.headers.get("authorization"))

    qui = Depends(identifie)

    @api.get("/v1/moi", description="Any valid staff token.")
    def moi(p: Personne = qui) -> dict[str, Any]:
        return {
            "sub": p.sub,
            "habilitations": [str(h) for h in p.habilitations],
            "roles": sorted(r.value for r in p.roles),
            "droits": droits.droits_de(p),
            "equipes": sorted(droits.equipes_visibles(p, garde.territoire_de)),
        }

    return api
