"""SPST (services de prévention et de santé au travail): HL7 FHIR R4 over HTTP.

``POST /v1/signalements/spst``, ``Content-Type: application/fhir+json``. Example:
``connectors/exemples/spst.fhir.json``.

A ``ServiceRequest`` alone (its ``Patient`` in ``contained``), or a ``Bundle`` holding
one or more ``ServiceRequest``, the ``Patient`` each one's ``subject`` points to (by
``fullUrl`` or ``Patient/<id>``) and optionally a ``Consent`` of that patient. Base FHIR R4
elements are enough; the resources are parsed by ``fhir.resources`` (its R4B models, whose
elements used here are R4's). What is read (:mod:`connectors.spst_lecture`):

- ``ServiceRequest.identifier[0].value`` (else ``ServiceRequest.id``): the SPST's reference,
  the one its Task's ``basedOn`` gives back;
- ``Patient.identifier`` of system ``urn:oid:1.2.250.1.213.1.4.8`` (INS-NIR), its key checked;
- ``Patient.gender`` (male/female), ``Patient.birthDate`` (the year is kept);
- ``Patient.address[0]``: the FR Core INSEE-code extension, else ``postalCode``, gives the
  département;
- ``ServiceRequest.reasonCode``: a coding of our motifs, else its text read for keywords,
  else ``autre`` with the text kept in the comment;
- ``ServiceRequest.category`` (axe PDP/SPS, optional), ``.note[*].text`` (comment);
- consent: an active ``Consent`` of the patient in the Bundle (provision permit/deny), else
  our extension ``consentement``; neither: unknown, the consent queue collects it;
- our optional extensions under ``EXT``: ``situation``, ``risque`` (else ``non-renseigne``),
  ``arret-debut``, ``arret-jours``, ``consentement``.

Every problem of a ServiceRequest is named in one answer by its FHIR path, never its value; a
wrong NIR key is ``nir-cle-invalide`` on ``Patient.identifier``. The gateway answers SPST
refusals as a FHIR ``OperationOutcome`` (:meth:`SpstConnector.corps_du_refus`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from aiguillage import nir
from aiguillage.dlq import Rejet
from aiguillage.domain import Axe, Motif, Risque, Sexe, Situation, Source
from aiguillage.fhir.reponses import operation_outcome
from connectors import champs
from connectors import spst_lecture as lecture
from connectors.base import Connector, Lu, PartnerRecord, json_du_corps

ACCEPTES = ("ServiceRequest", "Bundle")


class DemandeSpst(PartnerRecord):
    """The fields read from one ServiceRequest, its Patient and Consent, named by their FHIR path."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)
    reference: champs.Reference = Field(alias="ServiceRequest.identifier")
    nir: champs.NirSaisi = Field(alias="Patient.identifier")
    sexe: Sexe = Field(alias="Patient.gender")
    annee_naissance: champs.AnneeNaissance = Field(alias="Patient.birthDate")
    commune_insee: champs.CommuneInsee | None = Field(alias="Patient.address.extension(insee-code)", default=None)
    code_postal: champs.CodePostal | None = Field(alias="Patient.address.postalCode", default=None)
    departement: str = Field(alias="Patient.address")
    situation: Situation = Field(alias="ServiceRequest.extension(situation)", default=Situation.NON_RENSEIGNE)
    risque: Risque = Field(alias="ServiceRequest.extension(risque)", default=Risque.NON_RENSEIGNE)
    arret_debut: date | None = Field(alias="ServiceRequest.extension(arret-debut)", default=None)
    arret_jours: champs.JoursArret | None = Field(alias="ServiceRequest.extension(arret-jours)", default=None)
    motif: Motif = Field(alias="ServiceRequest.reasonCode")
    axe: Axe | None = Field(alias="ServiceRequest.category", default=None)
    consentement: bool | None = Field(alias="Consent", default=None, strict=True)
    commentaire: str | None = Field(alias="ServiceRequest.note", default=None)

    @field_validator("nir")
    @classmethod
    def _cle(cls, v: str) -> str:
        # Here, not after validation: a wrong key is named together with every other problem.
        try:
            nir.valider(v)
        except nir.NirInvalide as exc:
            raise PydanticCustomError(exc.code, str(exc)) from None
        return v

    @field_validator("sexe", mode="before")
    @classmethod
    def _genre(cls, v: Any) -> Any:
        if v not in ("M", "F"):  # FHIR's other and unknown: the figures count women and men
            raise PydanticCustomError("genre-invalide", "expected male or female")
        return v

    @field_validator("departement")
    @classmethod
    def _territoire(cls, v: str) -> str:
        if not v:
            raise PydanticCustomError(
                "departement-inconnu", "expected a French postalCode or the FR Core INSEE-code extension")
        return v

    def nir_en_clair(self) -> str:
        return self.nir

    def canonique(self) -> dict[str, Any]:
        return {
            "annee_naissance": self.annee_naissance, "sexe": self.sexe, "code_postal": self.code_postal,
            "commune_insee": self.commune_insee,
            "departement": self.departement,
            "situation": self.situation, "risque": self.risque, "arret_debut": self.arret_debut,
            "arret_jours": self.arret_jours, "motif": self.motif, "axe_suggere": self.axe,
            "consentement": self.consentement, "commentaire": self.commentaire,
        }


def _genre(g: str | None) -> str | None:
    return {"male": "M", "female": "F"}.get(g, g) if g else None


def _annee(birth: date | str | None) -> int | str | None:
    if isinstance(birth, date):
        return birth.year
    return int(birth[:4]) if isinstance(birth, str) and birth[:4].isdigit() else birth


def _aplatir(demande: Any, patient: Any, consents: list[Any]) -> dict[str, Any]:
    """FHIR models -> the flat dict :class:`DemandeSpst` validates; absent elements are left out."""
    adresse = (patient.address or [None])[0]
    motif, texte_motif = lecture.motif(demande.reasonCode)
    reference = next((i.value for i in demande.identifier or () if i.value), None) or demande.id
    consentement = lecture.consentement_du_consent(consents)
    if consentement is None:
        consentement = lecture.extension(demande, "consentement", "valueBoolean")
    insee = lecture.commune_insee(adresse) if adresse else None
    cp = adresse.postalCode if adresse else None
    champs_ = {
        "ServiceRequest.identifier": reference,
        "Patient.identifier": lecture.nir(patient),
        "Patient.gender": _genre(patient.gender),
        "Patient.birthDate": _annee(patient.birthDate),
        "Patient.address.extension(insee-code)": insee,
        "Patient.address.postalCode": cp,
        "Patient.address": lecture.departement(insee, cp) or "",
        "ServiceRequest.reasonCode": motif,
        "ServiceRequest.category": lecture.axe(demande.category),
        "Consent": consentement,
        "ServiceRequest.note": lecture.commentaire(texte_motif, *(n.text for n in demande.note or ())),
    }
    for nom, attribut in (("situation", "valueCode"), ("risque", "valueCode"), ("arret-debut", "valueDate"),
                          ("arret-jours", "valueInteger")):
        champs_[f"ServiceRequest.extension({nom})"] = lecture.extension(demande, nom, attribut)
    return {k: v for k, v in champs_.items() if v is not None}


def _chemin(racine: str, loc: tuple[Any, ...]) -> str:
    out = racine
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _modele(data: dict[str, Any]) -> Any:
    """The R4B model of a resource, or the Rejet naming each element FHIR itself refuses."""
    kind = data.get("resourceType")
    try:
        return (Bundle if kind == "Bundle" else ServiceRequest).model_validate(data)
    except ValidationError as exc:
        fields = tuple({"field": _chemin(str(kind), tuple(e["loc"])), "problem": e["msg"][:200], "type": e["type"]}
                       for e in exc.errors())
        return Rejet("fhir-invalide", "not a valid FHIR R4 resource: " + "; ".join(f["field"] for f in fields), fields)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # fhir.resources raises these on an unknown resourceType inside a Bundle or contained
        return Rejet("fhir-invalide", f"not a valid FHIR R4 resource ({type(exc).__name__})",
                     ({"field": f"{kind}.entry.resource.resourceType", "problem": "expected a FHIR R4 resource type"},))


def _cible(entry: Any) -> list[str]:
    res = entry.resource
    return [u for u in (entry.fullUrl, f"{res.get_resource_type()}/{res.id}" if res.id else None) if u]


def _patient_de(demande: Any, entries: list[Any]) -> Any:
    ref = demande.subject.reference if demande.subject is not None else None
    if not ref:
        return None
    if ref.startswith("#"):
        candidats = [(f"#{c.id}", c) for c in demande.contained or ()]
    else:
        candidats = [(u, e.resource) for e in entries for u in _cible(e)]
    return next((r for u, r in candidats if u == ref and r.get_resource_type() == "Patient"), None)


def _consents_de(patient_refs: set[str], entries: list[Any], demande: Any) -> list[Any]:
    tous = [e.resource for e in entries] + list(demande.contained or ())
    return [r for r in tous if r.get_resource_type() == "Consent"
            and (r.patient is None or r.patient.reference in patient_refs)]


class SpstConnector(Connector):
    source = Source.SPST
    media_types = ("application/fhir+json", "application/json")
    model = DemandeSpst
    nir_field = "Patient.identifier"

    def corps_du_refus(self, rejet: Rejet) -> tuple[dict[str, Any], str]:
        return operation_outcome(rejet), "application/fhir+json"

    def records(self, body: bytes) -> Iterator[Lu | Rejet]:
        data = json_du_corps(body, "FHIR JSON")
        if isinstance(data, Rejet):
            yield data
            return
        kind = data.get("resourceType") if isinstance(data, dict) else None
        if kind not in ACCEPTES:
            nom = kind if isinstance(kind, str) and kind.isalpha() and len(kind) < 64 else "(none)"
            yield Rejet("fhir-type-inattendu", f"expected a ServiceRequest or a Bundle holding one, not a {nom}",
                        ({"field": "resourceType", "problem": "expected ServiceRequest or Bundle"},))
            return
        res = _modele(data)
        if isinstance(res, Rejet):
            yield res
            return
        entries = [e for e in (res.entry or ()) if e.resource is not None] if kind == "Bundle" else []
        demandes = [e.resource for e in entries if e.resource.get_resource_type() == "ServiceRequest"] or (
            [res] if kind == "ServiceRequest" else [])
        if not demandes:
            yield Rejet("fhir-type-inattendu", "the Bundle holds no ServiceRequest",
                        ({"field": "Bundle.entry", "problem": "expected a ServiceRequest entry"},))
            return
        for demande in demandes:
            patient = _patient_de(demande, entries)
            if patient is None:
                yield Rejet("fhir-patient-introuvable",
                            "ServiceRequest.subject must reference its Patient (in the Bundle, or contained)",
                            ({"field": "ServiceRequest.subject", "problem": "no Patient found for this reference"},))
                continue
            refs = {demande.subject.reference} | {u for e in entries if e.resource is patient for u in _cible(e)}
            yield Lu(_aplatir(demande, patient, _consents_de(refs, entries, demande)))
