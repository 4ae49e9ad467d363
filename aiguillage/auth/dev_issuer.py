"""The development issuer of ``aiguillage up``: an OpenID Connect provider reduced to its keys.

``up`` makes an EC P-256 key pair at start (never written to disk: a new run, new keys, and
the previous run's tokens stop working), writes the public JWKS in its data directory, and mints
one token per demo role for its banner. The gateway serves that JWKS and a discovery document
under ``/dev-oidc/`` and checks tokens exactly as it checks a real provider's (aiguillage/auth/oidc.py):
nothing in the verification knows this issuer is a local one. ``up`` does none of it when
``AIGUILLAGE_OIDC_ISSUER`` is set: then the provider is a real one.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

CHEMIN = "/dev-oidc"
DUREE = 12 * 3600  # a working day: the banner's tokens outlive a demo, not a week

# One ready token per demo role: the README's example lands in 31-toulouse, the demo in the Aveyron.
ROLES_DEMO: dict[str, list[str]] = {
    "assistant": ["assistant:31-toulouse"],
    "responsable": ["responsable:territoire:12", "responsable:territoire:31"],
    "pilotage": ["pilotage"],
    "admin": ["admin"],
}


class Emetteur:
    """A key pair and the tokens it signs (ES256)."""

    def __init__(self, issuer: str, audience: str = "aiguillage", claim: str = "aiguillage_roles") -> None:
        self.issuer, self.audience, self.claim = issuer, audience, claim
        self.kid = secrets.token_hex(8)
        self.cle = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.cle.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def jeton(self, sub: str, roles: list[str], duree: float = DUREE, audience: str | None = None,
              maintenant: float | None = None, **claims: Any) -> str:
        t = int(maintenant if maintenant is not None else time.time())
        payload = {"iss": self.issuer, "aud": audience or self.audience, "sub": sub, "iat": t,
                   "exp": t + int(duree), self.claim: roles, **claims}
        return jwt.encode(payload, self.cle, algorithm="ES256", headers={"kid": self.kid})

    def jetons_demo(self) -> dict[str, str]:
        return {role: self.jeton(f"demo-{role}", habs) for role, habs in ROLES_DEMO.items()}

    def publier(self, path: Path) -> Path:
        """The public JWKS, where the gateway reads it (public: no secret in it)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"issuer": self.issuer, **self.jwks()}))
        os.replace(tmp, path)
        return path


def router(jwks_path: Path) -> APIRouter:
    """``/dev-oidc/.well-known/openid-configuration`` and ``/dev-oidc/jwks.json``, open (public keys)."""
    api = APIRouter()

    def lire() -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(jwks_path.read_text())
            return data
        except (OSError, ValueError) as exc:
            raise HTTPException(503, "the development issuer's keys are not there yet") from exc

    @api.get(f"{CHEMIN}/.well-known/openid-configuration", include_in_schema=False)
    def configuration() -> JSONResponse:
        issuer = lire()["issuer"]
        return JSONResponse({"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json",
                             "id_token_signing_alg_values_supported": ["ES256"]})

    @api.get(f"{CHEMIN}/jwks.json", include_in_schema=False)
    def jwks() -> JSONResponse:
        return JSONResponse({"keys": lire()["keys"]})

    return api
