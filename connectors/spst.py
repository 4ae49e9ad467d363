"""SPST (services de prévention et de santé au travail): HL7 FHIR R4 over HTTP.

``POST /v1/signalements/spst``, ``Content-Type: application/fhir+json``. Example:
``connectors/exemples/spst.fhir.json``.

A ``ServiceRequest`` alone (its ``Patient`` in ``contained``), or a ``Bundle``
holding one or more ``ServiceRequest`` and the ``Patient`` each one's ``subject``
points to (by ``fullUrl`` or ``Patient/<id>``). What is read:

- ``ServiceRequest.identifier[0].value``: the SPST's reference;
- ``Patient.identifier`` whose ``system`` is ``urn:oid:1.2.250.1.213.1.4.8`` (INS-NIR);
- ``Patient.gender`` (male/female), ``Patient.birthDate`` (the year is kept),
  ``Patient.address[0].postalCode`` and its FR Core INSEE-code extension;
- ``ServiceRequest.reasonCode`` (motif), ``.category`` (axe PDP/SPS, optional),
  ``.note[0].text`` (comment) and the extensions ``situation``, ``risque``,
  ``arret-debut``, ``arret-jours``, ``consentement`` under ``EXT``.

Field errors name the FHIR path (``Patient.gender``), never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field

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
from connectors.base import Connector, Lu, PartnerRecord, json_du_corps

INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
INSEE_EXT = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code"
EXT = "https://aiguillage.example/fhir/StructureDefinition/"
_NOM = re.compile(r"^[A-Za-z]{1,64}$")


def _d(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _l(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _code(concepts: Any) -> Any:
    """The first coding's code of the first CodeableConcept (or None)."""
    for concept in _l(concepts) or [concepts]:
        for coding in _l(_d(concept).get("coding")):
            if "code" in _d(coding):
                return coding["code"]
    return None


def _extension(resource: dict[str, Any], url: str, value_key: str) -> Any:
    for ext in _l(resource.get("extension")):
        if _d(ext).get("url") == url:
            return ext.get(value_key)
    return None


def _genre(v: Any) -> Any:
    if isinstance(v, str):
        if v in ("male", "female"):
            return "M" if v == "male" else "F"
        raise ValueError("expected male or female")
    return v


def _annee(v: Any) -> Any:
    if isinstance(v, str):
        if re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", v):
            return int(v[:4])
        raise ValueError("expected a FHIR date YYYY, YYYY-MM or YYYY-MM-DD")
    return v


class DemandeSpst(PartnerRecord):
    """The fields read from one ServiceRequest and its Patient, named by their FHIR path."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)
    reference: str = Field(alias="ServiceRequest.identifier", min_length=1, max_length=100)
    nir: str = Field(alias="Patient.identifier(INS-NIR)", min_length=13, max_length=21)
    sexe: Annotated[Sexe, BeforeValidator(_genre)] = Field(alias="Patient.gender")
    annee_naissance: Annotated[int, BeforeValidator(_annee)] = Field(alias="Patient.birthDate", ge=1900, le=2100)
    commune_insee: str = Field(alias="Patient.address.extension(insee-code)", pattern=r"^(\d{5}|2[AB]\d{3})$")
    code_postal: str | None = Field(alias="Patient.address.postalCode", default=None, pattern=r"^\d{5}$")
    situation: Situation = Field(alias="ServiceRequest.extension(situation)")
    risque: Risque = Field(alias="ServiceRequest.extension(risque)")
    arret_debut: date | None = Field(alias="ServiceRequest.extension(arret-debut)", default=None)
    arret_jours: int | None = Field(alias="ServiceRequest.extension(arret-jours)", default=None, ge=0, le=3650)
    motif: Motif = Field(alias="ServiceRequest.reasonCode")
    axe: Axe | None = Field(alias="ServiceRequest.category", default=None)
    consentement: bool = Field(alias="ServiceRequest.extension(consentement)", strict=True)
    commentaire: str | None = Field(alias="ServiceRequest.note", default=None, max_length=COMMENTAIRE_MAX)

    def nir_en_clair(self) -> str:
        return self.nir

    def canonique(self) -> dict[str, Any]:
        return {
            "annee_naissance": self.annee_naissance,
            "sexe": self.sexe,
            "code_postal": self.code_postal,
            "commune_insee": self.commune_insee,
            "departement": departement_de_commune(self.commune_insee),
            "situation": self.situation,
            "risque": self.risque,
            "arret_debut": self.arret_debut,
            "arret_jours": self.arret_jours,
            "motif": self.motif,
            "axe_suggere": self.axe,
            "consentement": self.consentement,
            "commentaire": self.commentaire,
        }


def _aplatir(demande: dict[str, Any], patient: dict[str, Any]) -> dict[str, Any]:
    """FHIR resources -> the flat dict :class:`DemandeSpst` validates; absent elements are left out."""
    adresse = _d((_l(patient.get("address")) or [None])[0])
    insee = _extension(adresse, INSEE_EXT, "valueCoding")
    nir = next(
        (i.get("value") for i in map(_d, _l(patient.get("identifier"))) if i.get("system") == INS_NIR), None
    )
    champs = {
        "ServiceRequest.identifier": _d((_l(demande.get("identifier")) or [None])[0]).get("value"),
        "Patient.identifier(INS-NIR)": nir,
        "Patient.gender": patient.get("gender"),
        "Patient.birthDate": patient.get("birthDate"),
        "Patient.address.extension(insee-code)": _d(insee).get("code") if insee is not None else None,
        "Patient.address.postalCode": adresse.get("postalCode"),
        "ServiceRequest.reasonCode": _code(demande.get("reasonCode")),
        "ServiceRequest.category": _code(demande.get("category")),
        "ServiceRequest.note": _d((_l(demande.get("note")) or [None])[0]).get("text"),
    }
    for nom, cle in (
        ("situation", "valueCode"), ("risque", "valueCode"), ("arret-debut", "valueDate"),
        ("arret-jours", "valueInteger"), ("consentement", "valueBoolean"),
    ):
        champs[f"ServiceRequest.extension({nom})"] = _extension(demande, EXT + nom, cle)
    return {k: v for k, v in champs.items() if v is not None}


def _patient(demande: dict[str, Any], bundle: list[dict[str, Any]]) -> dict[str, Any] | None:
    ref = _d(demande.get("subject")).get("reference")
    if not isinstance(ref, str):
        return None
    if ref.startswith("#"):
        candidats = [(f"#{_d(c).get('id')}", _d(c)) for c in _l(demande.get("contained"))]
    else:
        candidats = []
        for entry in bundle:
            res = _d(entry.get("resource"))
            candidats += [(entry.get("fullUrl"), res), (f"Patient/{res.get('id')}", res)]
    return next((r for url, r in candidats if url == ref and r.get("resourceType") == "Patient"), None)


def _type(res: dict[str, Any]) -> str:
    t = res.get("resourceType")
    return t if isinstance(t, str) and _NOM.match(t) else "(none)"


class SpstConnector(Connector):
    source = Source.SPST
    media_types = ("application/fhir+json", "application/json")
    model = DemandeSpst
    nir_field = "Patient.identifier(INS-NIR)"

    def records(self, body: bytes) -> Iterator[Lu | Rejet]:
        res = json_du_corps(body, "FHIR JSON")
        if isinstance(res, Rejet):
            yield res
            return
        if not isinstance(res, dict):
            yield Rejet("fhir-type-inattendu", "expected a FHIR resource (a JSON object) with a resourceType")
            return
        if _type(res) == "ServiceRequest":
            demandes, bundle = [res], []
        elif _type(res) == "Bundle":
            bundle = [_d(e) for e in _l(res.get("entry"))]
            demandes = [_d(e.get("resource")) for e in bundle if _type(_d(e.get("resource"))) == "ServiceRequest"]
            if not demandes:
                yield Rejet("fhir-type-inattendu", "the Bundle holds no ServiceRequest", ({"field": "Bundle.entry", "problem": "expected a ServiceRequest entry"},))
                return
        else:
            yield Rejet(
                "fhir-type-inattendu",
                f"expected a ServiceRequest or a Bundle holding one, not a {_type(res)}",
                ({"field": "resourceType", "problem": "expected ServiceRequest or Bundle"},),
            )
            return
        for demande in demandes:
            patient = _patient(demande, bundle)
            if patient is None:
                yield Rejet(
                    "fhir-patient-introuvable",
                    "ServiceRequest.subject must reference its Patient (in the Bundle, or contained)",
                    ({"field": "ServiceRequest.subject", "problem": "no Patient found for this reference"},),
                )
                continue
            yield Lu(_aplatir(demande, patient))
