"""The NIR (numéro d'inscription au répertoire): checked, then replaced by a keyed pseudonym.

The clear NIR lives only inside the connector's call; everything downstream sees
``nir_pseudonyme``. Error messages describe the shape, never the value.
"""

from __future__ import annotations

import hashlib
import hmac
import re

_SHAPE = re.compile(r"^[1-478]\d{2}(0[1-9]|1[0-2]|[2-9]\d)(\d{2}|2[AB])\d{6}\d{2}$")


class NirInvalide(ValueError):
    """The NIR is not a valid 13-character number followed by its 2-digit key."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def normaliser(nir: str) -> str:
    return re.sub(r"[\s.\-]", "", nir).upper()


def cle_attendue(nir13: str) -> int:
    """Key = 97 - (number mod 97); Corsica's 2A and 2B count as 19 and 18."""
    numero = int(nir13.replace("2A", "19").replace("2B", "18"))
    return 97 - numero % 97


def valider(nir: str) -> str:
    """Return the normalised 15-character NIR, or raise :class:`NirInvalide`."""
    if not isinstance(nir, str):
        raise NirInvalide("nir-invalide", "the NIR must be a string of 15 characters")
    n = normaliser(nir)
    if len(n) != 15:
        raise NirInvalide(
            "nir-invalide", f"the NIR must have 13 characters and a 2-digit key (got {len(n)})"
        )
    if not _SHAPE.match(n):
        raise NirInvalide(
            "nir-invalide",
            "the NIR must be digits (2A/2B allowed for a Corsican département), "
            "starting with 1, 2, 3, 4, 7 or 8",
        )
    if int(n[13:]) != cle_attendue(n[:13]):
        raise NirInvalide("nir-cle-invalide", "the NIR key does not match (97 - number mod 97)")
    return n


def pseudonymiser(nir_valide: str, cle: bytes) -> str:
    """HMAC-SHA256 of the normalised NIR with the hub's secret key, as hex."""
    return hmac.new(cle, nir_valide.encode("ascii"), hashlib.sha256).hexdigest()


def avec_cle(nir13: str) -> str:
    """Complete 13 characters with their key (used by examples and the simulator)."""
    return f"{nir13}{cle_attendue(nir13):02d}"
