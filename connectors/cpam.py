"""CPAM (and CCSS): JSON over HTTP. Example: ``connectors/exemples/cpam.json``.

Shape::

    {"reference": "...", "date_signalement": "AAAA-MM-JJ",
     "assure": {"nir", "sexe", "annee_naissance", "commune_insee", "code_postal"},
     "situation_professionnelle", "risque", "arret_travail": {"debut", "jours"} | null,
     "motif", "axe_propose": "PDP" | "SPS" | null, "consentement", "commentaire"}
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aiguillage.dlq import Rejet
from aiguillage.domain import (
    COMMENTAIRE_MAX,
    Axe,
    Motif,
    Risque,
    Sexe,
    Situation,
    Source,
    departement_de_commune,
)
from connectors.base import Connector, Lu, PartnerRecord, objet_json


class AssureCpam(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nir: str = Field(min_length=13, max_length=21)
    sexe: Sexe
    annee_naissance: int = Field(ge=1900, le=2100)
    commune_insee: str = Field(pattern=r"^(\d{5}|2[AB]\d{3})$")
    code_postal: str | None = Field(default=None, pattern=r"^\d{5}$")


class ArretTravail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    debut: date
    jours: int = Field(ge=0, le=3650)


class SignalementCpam(PartnerRecord):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(min_length=1, max_length=100)
    date_signalement: date | None = None
    assure: AssureCpam
    situation_professionnelle: Situation
    risque: Risque
    arret_travail: ArretTravail | None = None
    motif: Motif
    axe_propose: Axe | None = None
    consentement: bool
    commentaire: str | None = Field(default=None, max_length=COMMENTAIRE_MAX)

    def nir_en_clair(self) -> str:
        return self.assure.nir


    def canonique(self) -> dict[str, Any]:
        a = self.assure
        return {
            "annee_naissance": a.annee_naissance,
            "sexe": a.sexe,
            "code_postal": a.code_postal,
            "commune_insee": a.commune_insee,
            "departement": departement_de_commune(a.commune_insee),
            "situation": self.situation_professionnelle,
            "risque": self.risque,
            "arret_debut": self.arret_travail.debut if self.arret_travail else None,
            "arret_jours": self.arret_travail.jours if self.arret_travail else None,
            "motif": self.motif,
            "axe_suggere": self.axe_propose,
            "consentement": self.consentement,
            "commentaire": self.commentaire,
        }


class CpamConnector(Connector):
    source = Source.CPAM
    media_types = ("application/json",)
    model = SignalementCpam
    nir_field = "assure.nir"

    def records(self, body: bytes) -> Iterator[Lu | Rejet]:
        yield objet_json(body, "a CPAM signalement")
