"""Verification of staff bearer tokens: a JWT signed RS256 or ES256 by the identity provider.

PyJWT does the cryptography and the claims (signature with the JWKS key named by ``kid``,
``iss``, ``aud``, ``exp``/``nbf``/``iat`` with the configured leeway); nothing here is written by
hand. The JWKS URL comes from the provider's discovery document unless configured; both are
fetched on first use (under ``aiguillage up`` the gateway serves them itself) and the key set is
cached by :class:`jwt.PyJWKClient`, which fetches it again, at most every 30 s, for an unknown
``kid`` (a key rotation), so a flood of made-up ``kid`` costs one request.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import jwt

from aiguillage.auth.droits import Personne, personne
from aiguillage.config import Settings

ALGORITHMES = ("RS256", "ES256")


class JetonRefuse(Exception):
    """The token is not one this hub accepts; the message says why (never the token)."""


class Verificateur:
    def __init__(self, issuer: str | None, audience: str, jwks_url: str | None = None, leeway: float = 30.0,
                 claim: str = "aiguillage_roles") -> None:
        self.issuer = issuer  # compared with iss as written: some providers end it with a slash
        self.audience = audience
        self.leeway = leeway
        self.claim = claim
        self._jwks_url = jwks_url
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    @classmethod
    def depuis(cls, settings: Settings) -> Verificateur:
        return cls(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url, settings.oidc_leeway,
                   settings.oidc_roles_claim)

    def _jwks(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                url = self._jwks_url or self._decouvrir()
                self._client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=300, timeout=10)
            return self._client

    def _decouvrir(self) -> str:
        url = f"{(self.issuer or '').rstrip('/')}/.well-known/openid-configuration"
        try:
            doc = httpx.get(url, timeout=10).raise_for_status().json()
        except (httpx.HTTPError, ValueError) as exc:
            raise JetonRefuse(f"the identity provider's configuration could not be read ({type(exc).__name__})") from exc
        if doc.get("issuer") != self.issuer or not doc.get("jwks_uri"):
            raise JetonRefuse("the identity provider's configuration names another issuer or no jwks_uri")
        return str(doc["jwks_uri"])

    def claims(self, jeton: str) -> dict[str, Any]:
        if self.issuer is None:
            raise JetonRefuse("no identity provider is configured (AIGUILLAGE_OIDC_ISSUER)")
        try:
            cle = self._jwks().get_signing_key_from_jwt(jeton)
            return jwt.decode(
                jeton, cle, algorithms=list(ALGORITHMES), audience=self.audience, issuer=self.issuer,
                leeway=self.leeway, options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise JetonRefuse("the token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise JetonRefuse(f"the token is not for this audience ({self.audience})") from exc
        except jwt.InvalidIssuerError as exc:
            raise JetonRefuse("the token was issued by another issuer") from exc
        except jwt.PyJWKClientConnectionError as exc:
            raise JetonRefuse("the identity provider's keys could not be read") from exc
        except jwt.PyJWKClientError as exc:
            raise JetonRefuse("the token is signed by a key the identity provider does not publish") from exc
        except jwt.PyJWTError as exc:
            raise JetonRefuse(f"the token is not a valid signed JWT ({type(exc).__name__})") from exc

    def verifier(self, jeton: str) -> Personne:
        return personne(self.claims(jeton), self.claim)
