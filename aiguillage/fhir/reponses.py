"""FHIR answers: errors as an ``OperationOutcome``, the server's ``CapabilityStatement``.

An issue names the FHIR path at fault (``expression``) and our machine code (``details``,
system :data:`SYSTEME_ERREUR`: ``nir-cle-invalide``, ``champ-manquant``…), never a value.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from aiguillage.dlq import Rejet

SYSTEME_ERREUR = "https://aiguillage.example/fhir/CodeSystem/erreur"
FHIR_JSON = "application/fhir+json"

# our codes (or pydantic's error types) -> the FHIR issue-type
_TYPE = {"missing": "required", "jeton-absent": "login", "jeton-invalide": "login",
         "jeton-autre-source": "forbidden", "introuvable": "not-found", "fhir-type-inattendu": "not-supported",
         "json-invalide": "structure", "encodage-invalide": "structure", "fhir-invalide": "structure",
         "type-non-servi": "not-supported"}


def _issue(code: str, diagnostics: str, expression: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": "error",
        "code": _TYPE.get(code, "invalid"),
        "details": {"coding": [{"system": SYSTEME_ERREUR, "code": code}]},
        "diagnostics": diagnostics,
    }
    if expression and expression != "(body)":
        issue["expression"] = [expression]
    return issue


def outcome(code: str, diagnostics: str, expression: str | None = None) -> dict[str, Any]:
    """One error as an OperationOutcome (JSON)."""
    return OperationOutcome.model_validate(
        {"resourceType": "OperationOutcome", "issue": [_issue(code, diagnostics, expression)]}).model_dump(mode="json")


def _code(type_: str | None, defaut: str) -> str:
    """Our kebab-case codes (nir-cle-invalide…) as they are; pydantic's own types as ours."""
    if type_ == "missing":
        return "champ-manquant"
    return type_ if type_ and "-" in type_ else ("champ-invalide" if type_ else defaut)


def operation_outcome(rejet: Rejet) -> dict[str, Any]:
    """A refusal as an OperationOutcome: one issue per field at fault, else one for the whole."""
    issues = [_issue(_code(f.get("type"), rejet.code), f.get("problem", rejet.reason), f.get("field"))
              for f in rejet.fields] or [_issue(rejet.code, rejet.reason)]
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": issues}).model_dump(mode="json")


def capability_statement(base_url: str, date: str) -> dict[str, Any]:
    """What ``/fhir`` serves: Task, read and searched by ``based-on``, JSON only."""
    return CapabilityStatement.model_validate({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "kind": "instance",
        "software": {"name": "Aiguillage"},
        "implementation": {"description": "Aiguillage: retours of the SPST's referrals as FHIR Tasks",
                           "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "documentation": "Bearer token of the partner (SPST); a partner reads the Tasks of its own referrals only.",
            "security": {"service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                                  "code": "OAuth"}], "text": "Bearer token"}]},
            "resource": [{
                "type": "Task",
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": [{"name": "based-on", "type": "reference",
                                 "documentation": "ServiceRequest/<the SPST's reference: its identifier value>"}],
            }],
        }],
    }).model_dump(mode="json")
