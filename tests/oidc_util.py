"""A test identity provider: its own RSA keys, its JWKS and discovery document served over real
HTTP (a small thread server), and tokens minted for any habilitations, good or bad on purpose.

The hub is pointed at it with :meth:`Emetteur.env` (AIGUILLAGE_OIDC_ISSUER, AIGUILLAGE_OIDC_AUDIENCE):
it fetches the keys as it would a real provider's.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "aiguillage-test"
# The habilitations each test role holds (the claim format of aiguillage/auth/droits.py).
ROLES: dict[str, list[str]] = {
    "assistant-toulouse": ["assistant:31-toulouse"],
    "assistant-rodez": ["assistant:12-rodez"],
    "responsable-toulouse": ["responsable:31-toulouse"],
    "responsable-31": ["responsable:territoire:31"],
    "responsable-12": ["responsable:territoire:12"],
    "pilotage": ["pilotage"],
    "admin": ["admin"],
    "sans-role": [],
}


class Emetteur:
    def __init__(self) -> None:
        self.cle = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(6)
        self.requetes = 0
        emetteur = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                emetteur.requetes += 1
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": emetteur.issuer, "jwks_uri": f"{emetteur.issuer}/jwks.json"}
                elif self.path == "/jwks.json":
                    body = emetteur.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.serveur = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.serveur.server_address[1]}"
        self._thread = threading.Thread(target=self.serveur.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.serveur.shutdown()
        self.serveur.server_close()

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.cle.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def env(self) -> dict[str, str]:
        return {"AIGUILLAGE_OIDC_ISSUER": self.issuer, "AIGUILLAGE_OIDC_AUDIENCE": AUDIENCE,
                "AIGUILLAGE_OIDC_LEEWAY": "5"}

    def jeton(self, role: str = "pilotage", *, habilitations: list[str] | None = None, sub: str | None = None,
              duree: float = 600, audience: str = AUDIENCE, issuer: str | None = None, cle: Any = None,
              kid: str | None = None, algorithme: str = "RS256") -> str:
        now = int(time.time())
        payload = {"iss": issuer or self.issuer, "aud": audience, "sub": sub or f"test-{role}", "iat": now,
                   "exp": now + int(duree),
                   "aiguillage_roles": ROLES[role] if habilitations is None else habilitations}
        return jwt.encode(payload, cle or self.cle, algorithm=algorithme, headers={"kid": kid or self.kid})

    def entete(self, role: str = "pilotage", **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.jeton(role, **kw)}"}

    # The tokens the hub must refuse with a 401.
    def mauvais_jetons(self) -> dict[str, str]:
        autre = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return {
            "cle-inconnue": self.jeton("admin", cle=autre, kid="inconnue"),
            "cle-usurpee": self.jeton("admin", cle=autre),  # the right kid, another key: bad signature
            "expire": self.jeton("admin", duree=-120),
            "autre-audience": self.jeton("admin", audience="un-autre-service"),
            "autre-emetteur": self.jeton("admin", issuer="https://idp.example.org"),
            "es256-inconnue": self.jeton("admin", cle=ec.generate_private_key(ec.SECP256R1()), kid="ec",
                                         algorithme="ES256"),
            "pas-un-jwt": "n'importe-quoi",
            "non-signe": jwt.encode({"iss": self.issuer, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60,
                                     "aiguillage_roles": ["admin"]}, None, algorithm="none"),
        }


def garde(e: Emetteur, journal: Any = None) -> Any:
    """The staff guard of a router tested alone (no audit unless given a journal)."""
    from aiguillage.auth.garde import Garde
    from aiguillage.auth.oidc import Verificateur
    from aiguillage.routing.config_file import moteur_par_defaut

    return Garde(Verificateur(e.issuer, AUDIENCE, leeway=5), moteur_par_defaut().departement_de_equipe, journal)
