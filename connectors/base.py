"""The shared base of every partner connector: parse, validate, pseudonymise.

A connector only knows its partner's format: it turns the body into partner
records (``records``) and one record into canonical fields (its pydantic
``model`` with ``canonique()``). Validation, NIR check and pseudonym, ids and
errors are done here, once, the same way for every partner.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from aiguillage import nir
from aiguillage.dlq import Rejet
from aiguillage.domain import Signalement, Source, signalement_id


class PartnerRecord(BaseModel):
    """A partner's own record shape. Subclasses name the NIR field and map to canonical fields."""

    def nir_en_clair(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def reference_partenaire(self) -> str:
        """The partner's own reference; a field named ``reference`` is used by default."""
        return str(getattr(self, "reference"))  # noqa: B009 - a field of the subclass

    def canonique(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """Canonical Signalement fields, without id, source, recu_le and NIR."""
        raise NotImplementedError


@dataclass(frozen=True)
class Lu:
    """One record read from a body, with its line number in a batch file (None for single bodies)."""

    data: Any
    ligne: int | None = None
    brut: bytes | None = None  # the raw piece of a multi-record body, for the DLQ


def _loc(loc: tuple[Any, ...]) -> str:
    # A key is not a value, but a partner could still use a NIR as one: mask long digit runs.
    return ".".join(re.sub(r"\d{6,}", "…", str(p)) for p in loc) or "(body)"


def rejet_de_validation(exc: ValidationError, ligne: int | None = None) -> Rejet:
    """Name each wrong field and what was expected, never the value (it may be a NIR)."""
    fields = tuple(
        {"field": _loc(e["loc"]), "problem": e["msg"], "type": e["type"]} for e in exc.errors()
    )
    detail = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
    code = "champ-manquant" if all(e["type"] == "missing" for e in exc.errors()) else "champ-invalide"
    return Rejet(code, f"invalid or missing field(s): {detail}", fields, ligne)


class Connector(ABC):
    source: ClassVar[Source]
    media_types: ClassVar[tuple[str, ...]]
    model: ClassVar[type[PartnerRecord]]

    def corps_du_refus(self, rejet: Rejet) -> tuple[dict[str, Any], str]:
        """The body and media type of a refusal answer, in the partner's terms (JSON by default)."""
        return rejet.as_json(), "application/json"

    @abstractmethod
    def records(self, body: bytes) -> Iterator[Lu | Rejet]:
        """Split a body in the partner's format into records; a body-level problem is a Rejet."""

    def convertir(self, lu: Lu, recu_le: datetime, cle_pseudonyme: bytes) -> Signalement | Rejet:
        """One partner record -> one Signalement, or the Rejet that says why not."""
        out = self._convertir(lu, recu_le, cle_pseudonyme)
        return replace(out, brut=lu.brut) if isinstance(out, Rejet) and lu.brut is not None else out

    def _convertir(self, lu: Lu, recu_le: datetime, cle_pseudonyme: bytes) -> Signalement | Rejet:
        try:
            record = self.model.model_validate(lu.data)
        except ValidationError as exc:
            return rejet_de_validation(exc, lu.ligne)
        try:
            nir_valide = nir.valider(record.nir_en_clair())
        except nir.NirInvalide as exc:
            champ = getattr(self, "nir_field", "nir")
            return Rejet(exc.code, f"{champ}: {exc}", ({"field": champ, "problem": str(exc)},), lu.ligne)
        ref = record.reference_partenaire()
        try:
            return Signalement(
                signalement_id=signalement_id(self.source, ref),
                source=self.source,
                source_ref=ref,
                recu_le=recu_le,
                nir_pseudonyme=nir.pseudonymiser(nir_valide, cle_pseudonyme),
                **record.canonique(),
            )
        except ValidationError as exc:
            return rejet_de_validation(exc, lu.ligne)

    def lire(self, body: bytes, recu_le: datetime, cle_pseudonyme: bytes) -> Iterator[Signalement | Rejet]:
        for item in self.records(body):
            yield item if isinstance(item, Rejet) else self.convertir(item, recu_le, cle_pseudonyme)


def verifier_provenance(s: Signalement, topic: str) -> Rejet | None:
    """A record produced straight to Kafka must come from the topic's own partner, with the id
    its reference gives: otherwise a partner could speak for another, or reuse another's id
    to have a real signalement dropped as a duplicate."""
    topic_source = topic.rsplit(".", 1)[-1]
    if s.source.value != topic_source:
        return Rejet("source-usurpee", f"source: expected {topic_source} on {topic}",
                     ({"field": "source", "problem": f"expected {topic_source}"},))
    if s.signalement_id != signalement_id(s.source, s.source_ref):
        return Rejet("id-incoherent", "signalement_id: expected the UUIDv5 of source and source_ref",
                     ({"field": "signalement_id", "problem": "expected uuid5(source:source_ref)"},))
    return None


def texte(body: bytes) -> str | Rejet:
    """Decode a body as UTF-8 (with or without BOM), or say it is not text."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Rejet("encodage-invalide", f"the body is not UTF-8 text (byte {exc.start})")


def json_du_corps(body: bytes, quoi: str = "JSON") -> Any:
    """The parsed JSON of a body, or the Rejet saying why it is not text or not ``quoi``."""
    txt = texte(body)
    if isinstance(txt, Rejet):
        return txt
    try:
        return json.loads(txt)
    except json.JSONDecodeError as exc:
        return Rejet("json-invalide", f"the body is not valid {quoi}: {exc.msg} at line {exc.lineno}, column {exc.colno}")
    except RecursionError:  # nesting deep enough to exhaust the parser
        return Rejet("json-invalide", f"the body is not valid {quoi}: nested too deeply")


def objet_json(body: bytes, quoi: str) -> Lu | Rejet:
    """A body that must be one JSON object (``quoi``: what the partner sends, for the error)."""
    data = json_du_corps(body)
    if isinstance(data, Rejet):
        return data
    if not isinstance(data, dict):
        return Rejet("json-invalide", f"the body must be one JSON object ({quoi})")
    return Lu(data)


class ConnecteurJson(Connector):
    """A partner that posts one JSON object per signalement."""

    media_types = ("application/json",)
    quoi: ClassVar[str]  # what the partner sends, named in the error when the body is not one object

    def records(self, body: bytes) -> Iterator[Lu | Rejet]:
        yield objet_json(body, self.quoi)
