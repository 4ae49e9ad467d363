"""Cap emploi: JSON over HTTP, with its own field names and codes.

``POST /v1/signalements/cap-emploi``, ``Content-Type: application/json``. Example:
``connectors/exemples/cap-emploi.json``. Shape::

    {"idDossier", "dateOrientation": "AAAA-MM-JJ",
     "beneficiaire": {"numeroSecuriteSociale", "civilite": "Mme" | "M.", "dateNaissance",
                      "codeCommune", "codePostal"},
     "statutEmploi": SALARIE | DEMANDEUR_EMPLOI | INDEPENDANT | FONCTION_PUBLIQUE | SANS_ACTIVITE | AUTRE,
     "natureRisque": MALADIE | AT_MP | INVALIDITE,
     "motifOrientation": MAINTIEN_EMPLOI | RQTH | RECONVERSION | INAPTITUDE | ARRET_LONG
                         | TEMPS_PARTIEL_THERAPEUTIQUE | AUTRE,
     "arretEnCours": {"dateDebut", "nbJours"} | null, "accordBeneficiaire": bool, "observations"}

Cap emploi works on keeping disabled people in employment: its signalements are
suggested to the PDP axe.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, Literal

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

STATUTS = {
    "SALARIE": Situation.SALARIE,
    "DEMANDEUR_EMPLOI": Situation.DEMANDEUR_EMPLOI,
    "INDEPENDANT": Situation.INDEPENDANT,
    "FONCTION_PUBLIQUE": Situation.FONCTIONNAIRE,
    "SANS_ACTIVITE": Situation.SANS_ACTIVITE,
    "AUTRE": Situation.AUTRE,
}
RISQUES = {"MALADIE": Risque.MALADIE, "AT_MP": Risque.AT_MP, "INVALIDITE": Risque.INVALIDITE}
MOTIFS = {
    "MAINTIEN_EMPLOI": Motif.RESTRICTIONS_APTITUDE,
    "RQTH": Motif.RQTH,
    "RECONVERSION": Motif.RECONVERSION,
    "INAPTITUDE": Motif.INAPTITUDE,
    "ARRET_LONG": Motif.ARRET_LONG,
    "TEMPS_PARTIEL_THERAPEUTIQUE": Motif.REPRISE_TEMPS_PARTIEL,
    "AUTRE": Motif.AUTRE,
}


class Beneficiaire(BaseModel):
    model_config = ConfigDict(extra="forbid")
    numeroSecuriteSociale: str = Field(min_length=13, max_length=21)
    civilite: Literal["Mme", "M."]
    dateNaissance: date
    codeCommune: str = Field(pattern=r"^(\d{5}|2[AB]\d{3})$")
    codePostal: str | None = Field(default=None, pattern=r"^\d{5}$")


class Arret(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dateDebut: date
    nbJours: int = Field(ge=0, le=3650)


class DossierCapEmploi(PartnerRecord):
    model_config = ConfigDict(extra="forbid")
    idDossier: str = Field(min_length=1, max_length=100)
    dateOrientation: date | None = None
    beneficiaire: Beneficiaire
    statutEmploi: Literal[tuple(STATUTS)]  # type: ignore[valid-type]
    natureRisque: Literal[tuple(RISQUES)]  # type: ignore[valid-type]
    motifOrientation: Literal[tuple(MOTIFS)]  # type: ignore[valid-type]
    arretEnCours: Arret | None = None
    accordBeneficiaire: bool
    observations: str | None = Field(default=None, max_length=COMMENTAIRE_MAX)

    def nir_en_clair(self) -> str:
        return self.beneficiaire.numeroSecuriteSociale

    def reference_partenaire(self) -> str:
        return self.idDossier

    def canonique(self) -> dict[str, Any]:
        b, arret = self.beneficiaire, self.arretEnCours
        return {
            "annee_naissance": b.dateNaissance.year,
            "sexe": Sexe.F if b.civilite == "Mme" else Sexe.M,
            "code_postal": b.codePostal,
            "commune_insee": b.codeCommune,
            "departement": departement_de_commune(b.codeCommune),
            "situation": STATUTS[self.statutEmploi],
            "risque": RISQUES[self.natureRisque],
            "arret_debut": arret.dateDebut if arret else None,
            "arret_jours": arret.nbJours if arret else None,
            "motif": MOTIFS[self.motifOrientation],
            "axe_suggere": Axe.PDP,
            "consentement": self.accordBeneficiaire,
            "commentaire": self.observations,
        }


class CapEmploiConnector(Connector):
    source = Source.CAP_EMPLOI
    media_types = ("application/json",)
    model = DossierCapEmploi
    nir_field = "beneficiaire.numeroSecuriteSociale"

    def records(self, body: bytes) -> Iterator[Lu | Rejet]:
        yield objet_json(body, "a Cap emploi dossier")
