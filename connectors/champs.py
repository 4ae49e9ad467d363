"""The fields every partner format shares, constrained once: a NIR as typed, a birth year, an
INSEE commune, a postcode, a partner reference, a work stoppage, a comment; the assuré and
the work stoppage of the formats that carry them as objects; and the canonical fields a
partner record maps to (:func:`canonique`).

The constraints are the canonical Signalement's (``aiguillage/domain.py``), so that what a
connector accepts the hub can carry; the NIR itself is checked by :mod:`aiguillage.nir`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from aiguillage.domain import (
    COMMENTAIRE_MAX,
    Axe,
    Motif,
    Risque,
    Sexe,
    Situation,
    departement_de_commune,
)

NirSaisi = Annotated[str, Field(min_length=13, max_length=21)]  # spaces and dots allowed
AnneeNaissance = Annotated[int, Field(ge=1900, le=2100)]
CommuneInsee = Annotated[str, Field(pattern=r"^(\d{5}|2[AB]\d{3})$")]
CodePostal = Annotated[str, Field(pattern=r"^\d{5}$")]
Reference = Annotated[str, Field(min_length=1, max_length=100)]
JoursArret = Annotated[int, Field(ge=0, le=3650)]
Commentaire = Annotated[str, Field(max_length=COMMENTAIRE_MAX)]


class Assure(BaseModel):
    """The assuré as the CPAM writes it (snake_case); :class:`AssureCamel` as the MDPH does."""

    model_config = ConfigDict(extra="forbid")
    nir: NirSaisi
    sexe: Sexe
    annee_naissance: AnneeNaissance
    commune_insee: CommuneInsee
    code_postal: CodePostal | None = None


class AssureCamel(Assure):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, str_strip_whitespace=True)


class ArretTravail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    debut: date
    jours: JoursArret


def canonique(*, annee_naissance: int, sexe: Sexe, commune_insee: str, code_postal: str | None,
              situation: Situation, risque: Risque, motif: Motif, axe: Axe | None,
              arret: tuple[date | None, int | None] | None, consentement: bool,
              commentaire: str | None) -> dict[str, Any]:
    """The canonical Signalement fields of a partner record (without id, source, recu_le, NIR)."""
    debut, jours = arret or (None, None)
    return {
        "annee_naissance": annee_naissance, "sexe": sexe, "code_postal": code_postal,
        "commune_insee": commune_insee, "departement": departement_de_commune(commune_insee),
        "situation": situation, "risque": risque, "arret_debut": debut, "arret_jours": jours,
        "motif": motif, "axe_suggere": axe, "consentement": consentement, "commentaire": commentaire,
    }


def assure(a: Assure, **reste: Any) -> dict[str, Any]:
    """:func:`canonique` for a format that writes the assuré as :class:`Assure`."""
    return canonique(annee_naissance=a.annee_naissance, sexe=a.sexe, commune_insee=a.commune_insee,
                     code_postal=a.code_postal, **reste)
