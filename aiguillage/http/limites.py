"""Partner abuse: a rate limit per partner token, and the body-size limit on every endpoint.

Both are plain ASGI middlewares of the gateway process, so they hold for every route, the ones
added later included (FHIR). The rate limit is a token bucket per partner token
(``AIGUILLAGE_LIMITE_PARTENAIRE`` requests per second, ``AIGUILLAGE_LIMITE_PARTENAIRE_RAFALE``
at once): over it, ``429`` with ``Retry-After``, and nothing is read or published. A partner
token is recognised by its prefix; the bucket is keyed by the token's hash (never the token), so
one partner's flood does not slow another. The buckets live in this process: several gateway
replicas each allow the rate (the limit is against abuse, not an accounting quota).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from connectors.jetons import PREFIXE

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]
MAX_SEAUX = 10_000


class Seaux:
    """Token buckets by key: ``debit`` per second, at most ``rafale`` at once."""

    def __init__(self, debit: float, rafale: int, horloge: Callable[[], float] = time.monotonic) -> None:
        self.debit, self.rafale, self.horloge = debit, float(rafale), horloge
        self._seaux: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def prendre(self, cle: str) -> float:
        """0 if a request of ``cle`` may go now (and count it), else the seconds until it may."""
        now = self.horloge()
        with self._lock:
            jetons, quand = self._seaux.get(cle, (self.rafale, now))
            jetons = min(self.rafale, jetons + (now - quand) * self.debit)
            if jetons >= 1:
                self._seaux[cle] = (jetons - 1, now)
                if len(self._seaux) > MAX_SEAUX:
                    self._oublier(now)
                return 0.0
            self._seaux[cle] = (jetons, now)
            return (1 - jetons) / self.debit

    def _oublier(self, now: float) -> None:
        """Forget the buckets that are full again: they hold nothing a new one would not."""
        for cle, (jetons, quand) in list(self._seaux.items()):
            if jetons + (now - quand) * self.debit >= self.rafale:
                del self._seaux[cle]


async def _repondre(send: Callable[..., Any], status: int, body: dict[str, str],
                    headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


def _jeton_partenaire(scope: Scope) -> str | None:
    for nom, valeur in scope.get("headers", ()):
        if nom == b"authorization":
            scheme, _, jeton = valeur.decode("latin-1").partition(" ")
            jeton = jeton.strip()
            if scheme.lower() == "bearer" and jeton.startswith(PREFIXE):
                return jeton
    return None


class LimiteParJeton:
    def __init__(self, app: ASGIApp, seaux: Seaux | None) -> None:
        self.app, self.seaux = app, seaux

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "http" and self.seaux is not None and (jeton := _jeton_partenaire(scope)):
            attente = self.seaux.prendre(hashlib.sha256(jeton.encode()).hexdigest())
            if attente > 0:
                apres = str(max(1, math.ceil(attente)))
                await _repondre(send, 429, {"error": "trop-de-requetes", "detail": "this partner token is over its "
                                            f"rate limit: nothing was read, retry in {apres} s"},
                                [(b"retry-after", apres.encode())])
                return
        await self.app(scope, receive, send)


class LimiteCorps:
    """413 for a body over ``limite`` bytes, on every route: declared (Content-Length) or streamed."""

    def __init__(self, app: ASGIApp, limite: int) -> None:
        self.app, self.limite = app, limite

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declare = dict(scope.get("headers", ())).get(b"content-length", b"")
        if declare.isdigit() and int(declare) > self.limite:
            await self._trop(send)
            return
        messages, taille = [], 0
        while True:  # the body is read here, at most `limite` bytes of it, then handed on as it came
            message = await receive()
            messages.append(message)
            taille += len(message.get("body", b""))
            if taille > self.limite:
                await self._trop(send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def rejouer() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, rejouer, send)

    async def _trop(self, send: Callable[..., Any]) -> None:
        await _repondre(send, 413, {"error": "corps-trop-grand", "detail": f"the body exceeds {self.limite} bytes"})
