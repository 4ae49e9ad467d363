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

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from aiguillage.domain import Axe, Motif, Risque, Sexe, Situation, Source
from connectors import champs
from connectors.base import ConnecteurJson, PartnerRecord

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
    numeroSecuriteSociale: champs.NirSaisi
    civilite: Literal["Mme", "M."]
    dateNaissance: date
    codeCommune: champs.CommuneInsee
    codePostal: champs.CodePostal | None = None


class Arret(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dateDebut: date
    nbJours: champs.JoursArret


class DossierCapEmploi(PartnerRecord):
    model_config = ConfigDict(extra="forbid")
    idDossier: champs.Reference
    dateOrientation: date | None = None
    beneficiaire: Beneficiaire
    statutEmploi: Literal[tuple(STATUTS)]  # type: ignore[valid-type]
    natureRisque: Literal[tuple(RISQUES)]  # type: ignore[valid-type]
    motifOrientation: Literal[tuple(MOTIFS)]  # type: ignore[valid-type]
    arretEnCours: Arret | None = None
    accordBeneficiaire: bool
    observations: champs.Commentaire | None = None

    def nir_en_clair(self) -> str:
        return self.beneficiaire.numeroSecuriteSociale

    def reference_partenaire(self) -> str:
        return self.idDossier

    def canonique(self) -> dict[str, Any]:
        b, arret = self.beneficiaire, self.arretEnCours
        return champs.canonique(
            annee_naissance=b.dateNaissance.year, sexe=Sexe.F if b.civilite == "Mme" else Sexe.M,
            commune_insee=b.codeCommune, code_postal=b.codePostal, situation=STATUTS[self.statutEmploi],
            risque=RISQUES[self.natureRisque], motif=MOTIFS[self.motifOrientation], axe=Axe.PDP,
            arret=(arret.dateDebut, arret.nbJours) if arret else None, consentement=self.accordBeneficiaire,
            commentaire=self.observations)


class CapEmploiConnector(ConnecteurJson):
    source, model, nir_field = Source.CAP_EMPLOI, DossierCapEmploi, "beneficiaire.numeroSecuriteSociale"
    quoi = "a Cap emploi dossier"
