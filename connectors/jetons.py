"""Partner bearer tokens: one or more per source, stored hashed in the token file.

The file (``AIGUILLAGE_TOKENS_FILE``, default ``var/tokens.json``) never holds a
token: each entry keeps a random salt and HMAC-SHA256(salt, token). Tokens are
32 random bytes, so a salted fast hash is enough (no password stretching needed)
and a leaked file gives nothing to replay. A token is printed once, when issued.

The gateway re-reads the file when it changes, so a rotation needs no restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiguillage.domain import Source

PREFIXE = "aig_"


def _empreinte(sel: bytes, jeton: str) -> str:
    return hmac.new(sel, jeton.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Entree:
    id: str
    source: str
    sel: str
    empreinte: str
    cree_le: str

    def accepte(self, jeton: str) -> bool:
        return hmac.compare_digest(_empreinte(bytes.fromhex(self.sel), jeton), self.empreinte)


def lire(path: Path) -> list[Entree]:
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Entree(**e) for e in data.get("jetons", [])]


def _ecrire(path: Path, entrees: list[Entree]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    body = {"version": 1, "jetons": [e.__dict__ for e in entrees]}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=2)
    os.replace(tmp, path)  # atomic: a gateway reading the file never sees half of it


def emettre(path: Path, source: Source | str, remplacer: bool = False, prefixe_id: str = "") -> tuple[str, Entree]:
    """Issue a new token for ``source``; with ``remplacer`` the source's older tokens stop working.

    Returns the token in clear (show it once, it is not kept) and its entry.
    """
    src = Source(source).value
    jeton = PREFIXE + secrets.token_urlsafe(32)
    sel = secrets.token_bytes(16)
    entree = Entree(
        id=f"{prefixe_id}{src}-{secrets.token_hex(4)}",
        source=src,
        sel=sel.hex(),
        empreinte=_empreinte(sel, jeton),
        cree_le=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    entrees = [e for e in lire(path) if not (remplacer and e.source == src)]
    _ecrire(path, [*entrees, entree])
    return jeton, entree


def jetons_de_dev(path: Path) -> dict[str, str]:
    """``aiguillage up`` on a dev machine: a throw-away token per source for this run.

    The previous run's dev tokens (ids ``dev-…``) are revoked; tokens issued with
    ``aiguillage tokens add`` in the same file are kept.
    """
    _ecrire(path, [e for e in lire(path) if not e.id.startswith("dev-")])
    return {s.value: emettre(path, s, prefixe_id="dev-")[0] for s in Source}


def revoquer(path: Path, jeton_id: str) -> bool:
    entrees = lire(path)
    restantes = [e for e in entrees if e.id != jeton_id]
    _ecrire(path, restantes)
    return len(restantes) != len(entrees)


@dataclass(frozen=True)
class Refus:
    status: int  # 401: who are you? 403: you, but not for this source
    code: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail}


class Authentification:
    """Checks ``Authorization: Bearer <token>`` against the token file, reloaded when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._entrees: list[Entree] = []

    def _entrees_a_jour(self) -> list[Entree]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return []  # no file: nobody is let in (fail closed)
        if mtime != self._mtime:
            self._entrees, self._mtime = lire(self.path), mtime
        return self._entrees

    def verifier(self, authorization: str | None, source: Source) -> Refus | None:
        scheme, _, jeton = (authorization or "").partition(" ")
        jeton = jeton.strip()
        if scheme.lower() != "bearer" or not jeton:
            return Refus(401, "jeton-absent", "send 'Authorization: Bearer <token>' with the token of your source")
        entree = next((e for e in self._entrees_a_jour() if e.accepte(jeton)), None)
        if entree is None:
            return Refus(401, "jeton-invalide", "this bearer token is unknown or was revoked")
        if entree.source != source.value:
            return Refus(403, "jeton-autre-source", f"this token is bound to another source, not {source.value}")
        return None
