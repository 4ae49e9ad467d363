"""CPAM (and CCSS): JSON over HTTP. Example: ``connectors/exemples/cpam.json``.

Shape::

    {"reference": "...", "date_signalement": "AAAA-MM-JJ",
     "assure": {"nir", "sexe", "annee_naissance", "commune_insee", "code_postal"},
     "situation_professionnelle", "risque", "arret_travail": {"debut", "jours"} | null,
     "motif", "axe_propose": "PDP" | "SPS" | null, "consentement", "commentaire"}
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import ConfigDict

from aiguillage.domain import Axe, Motif, Risque, Situation, Source
from connectors import champs
from connectors.base import ConnecteurJson, PartnerRecord


class SignalementCpam(PartnerRecord):
    model_config = ConfigDict(extra="forbid")
    reference: champs.Reference
    date_signalement: date | None = None
    assure: champs.Assure
    situation_professionnelle: Situation
    risque: Risque
    arret_travail: champs.ArretTravail | None = None
    motif: Motif
    axe_propose: Axe | None = None
    consentement: bool
    commentaire: champs.Commentaire | None = None

    def nir_en_clair(self) -> str:
        return self.assure.nir


    def canonique(self) -> dict[str, Any]:
        arret = self.arret_travail
        return champs.assure(self.assure, situation=self.situation_professionnelle, risque=self.risque,
                             motif=self.motif, axe=self.axe_propose, arret=(arret.debut, arret.jours) if arret else None,
                             consentement=self.consentement, commentaire=self.commentaire)


class CpamConnector(ConnecteurJson):
    source, model, nir_field = Source.CPAM, SignalementCpam, "assure.nir"
    quoi = "a CPAM signalement"
