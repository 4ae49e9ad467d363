"""FHIR R4 bodies as an SPST writes them from the specification alone (base elements, none of
Aiguillage's extensions, no FR Core profile): what the SPST connector must route."""

from __future__ import annotations

import copy
import json
from typing import Any

from aiguillage import nir

INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
NIR_TOULOUSE = nir.avec_cle("1720531555123")  # born 1972, commune 31555


def patient(nir_: str = NIR_TOULOUSE, postal: str = "31300", **reste: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": INS_NIR, "value": nir_}],
            "gender": "female", "birthDate": "1972-05-14",
            "address": [{"use": "home", "city": "Toulouse", "postalCode": postal, "country": "FR"}], **reste}


def demande(ref: str, subject: str, reason: dict[str, Any] | None = None, **reste: Any) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "identifier": [{"system": "urn:spst:test", "value": ref}],
            "status": "active", "intent": "order", "subject": {"reference": subject},
            "authoredOn": "2026-11-30",
            "reasonCode": [reason or {"coding": [{"system": "http://snomed.info/sct", "code": "224363007",
                                                   "display": "Inaptitude au poste de travail"}]}],
            **reste}


def bundle(ref: str, *autres: dict[str, Any], pat: dict[str, Any] | None = None, **dem: Any) -> dict[str, Any]:
    """A Bundle (type collection) of a Patient, its ServiceRequest, and ``autres`` resources."""
    url = "urn:uuid:0b5c1a6e-2a54-4f11-9d43-6c4e8a1f0c11"
    entries = [{"fullUrl": url, "resource": pat or patient()}, {"resource": demande(ref, url, **dem)}]
    return {"resourceType": "Bundle", "type": "collection",
            "entry": entries + [{"resource": copy.deepcopy(r)} for r in autres]}


def contenu(ref: str, postal: str = "31300", **dem: Any) -> dict[str, Any]:
    """A ServiceRequest alone, its Patient contained, with only a postcode for an address."""
    return demande(ref, "#p", contained=[patient(postal=postal, id="p")], **dem)


TEXTE_SEUL = {"text": "Salariée en difficulté, fin de droits aux indemnités prochaine"}
TEXTE_INCONNU = {"text": "Souhaite un rendez-vous"}


def consent(provision: str, patient_ref: str = "urn:uuid:0b5c1a6e-2a54-4f11-9d43-6c4e8a1f0c11") -> dict[str, Any]:
    return {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": patient_ref}, "provision": {"type": provision}}


def corps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()
