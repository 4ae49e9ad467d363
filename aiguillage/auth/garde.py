"""The FastAPI side of staff access: ``Depends(garde.exige(Droit.X))`` on every staff route.

- no credential, or one this hub does not accept (a partner token included): 401 with
  ``WWW-Authenticate: Bearer realm="aiguillage"`` (and ``error="invalid_token"`` when a token was
  sent, RFC 6750 §3.1);
- a valid token whose habilitations lack the right: 403 naming it (``{"droit": ...}``).

The per-team checks (which files, which signalement) are the routes' own, with
:mod:`aiguillage.auth.droits`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from aiguillage.auth.audit import Journal
from aiguillage.auth.droits import Droit, Personne, exige
from aiguillage.auth.oidc import JetonRefuse, Verificateur
from connectors.jetons import PREFIXE as PREFIXE_PARTENAIRE

REALM = "aiguillage"


class RefusAcces(Exception):
    def __init__(self, status: int, code: str, detail: str, droit: str | None = None,
                 jeton_present: bool = False) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.droit = status, code, detail, droit
        self.jeton_present = jeton_present

    def reponse(self) -> JSONResponse:
        body: dict[str, object] = {"error": self.code, "detail": self.detail}
        headers = None
        if self.droit is not None:
            body["droit"] = self.droit
        if self.status == 401:
            www = f'Bearer realm="{REALM}"'
            if self.jeton_present:
                www += f', error="invalid_token", error_description="{self.detail.replace(chr(34), chr(39))}"'
            headers = {"WWW-Authenticate": www}
        return JSONResponse(body, status_code=self.status, headers=headers)


def interdit(droit: str) -> RefusAcces:
    return RefusAcces(403, "droit-manquant", f"your habilitations do not give the right {droit!r}", droit)


class Garde:
    def __init__(self, verificateur: Verificateur, territoire_de: Mapping[str, str], journal: Journal | None) -> None:
        self.verificateur = verificateur
        self.territoire_de = territoire_de  # team -> département, from the routing configuration
        self.journal = journal

    def personne(self, authorization: str | None) -> Personne:
        scheme, _, jeton = (authorization or "").partition(" ")
        jeton = jeton.strip()
        if scheme.lower() != "bearer" or not jeton:
            raise RefusAcces(401, "jeton-absent", "send 'Authorization: Bearer <token>' with your OpenID Connect token")
        if jeton.startswith(PREFIXE_PARTENAIRE):
            raise RefusAcces(401, "jeton-partenaire", "a partner token is not a staff credential", jeton_present=True)
        try:
            return self.verificateur.verifier(jeton)
        except JetonRefuse as exc:
            raise RefusAcces(401, "jeton-invalide", str(exc), jeton_present=True) from exc

    def exige(self, droit: Droit) -> Callable[[Request], Personne]:
        # A plain def: FastAPI runs it in its thread pool, where a first JWKS fetch may block.
        def dependance(request: Request) -> Personne:
            p = self.personne(request.headers.get("authorization"))
            manque = exige(p, droit)
            if manque is not None:
                raise interdit(manque)
            return p

        dependance.__name__ = f"exige_{droit.value.replace('-', '_')}"
        return dependance


def installer(app: FastAPI) -> None:
    async def _refus(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RefusAcces)
        return exc.reponse()

    app.add_exception_handler(RefusAcces, _refus)
