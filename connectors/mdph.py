"""MDPH: an XML document over HTTP, described by ``connectors/mdph.xsd``.

``POST /v1/signalements/mdph``, ``Content-Type: application/xml``. Example:
``connectors/exemples/mdph.xml``.

Parsed with defusedxml: a DTD, an entity declaration (billion laughs) or an
external reference is refused before anything is expanded or fetched. The
structure of the XSD (root element and namespace, known elements, each at most
once, required ones present, value types) is checked here in Python, so that
every wrong element is named in the answer, as for the other partners.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from pydantic import BeforeValidator, ConfigDict

from aiguillage.dlq import Rejet
from aiguillage.domain import Axe, Motif, Risque, Situation, Source
from connectors import champs
from connectors.base import Connector, Lu, PartnerRecord

NS = "urn:aiguillage:mdph:1"
RACINE = "signalementMDPH"


def _booleen_xsd(v: Any) -> Any:
    if isinstance(v, str):
        if v.strip() in ("true", "1", "false", "0"):
            return v.strip() in ("true", "1")
        raise ValueError("expected an xs:boolean: true, false, 1 or 0")
    return v


class ArretTravail(champs.ArretTravail):
    model_config = ConfigDict(extra="ignore")  # other attributes of <arretTravail> are not ours


class SignalementMdph(PartnerRecord):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    numeroDemande: champs.Reference
    dateDecision: date | None = None
    personne: champs.AssureCamel
    situation: Situation
    risque: Risque
    motif: Motif
    axePropose: Axe | None = None
    arretTravail: ArretTravail | None = None
    consentement: Annotated[bool, BeforeValidator(_booleen_xsd)]
    commentaire: champs.Commentaire | None = None

    def nir_en_clair(self) -> str:
        return self.personne.nir

    def reference_partenaire(self) -> str:
        return self.numeroDemande

    def canonique(self) -> dict[str, Any]:
        arret = self.arretTravail
        return champs.assure(self.personne, situation=self.situation, risque=self.risque, motif=self.motif,
                             axe=self.axePropose, arret=(arret.debut, arret.jours) if arret else None,
                             consentement=self.consentement, commentaire=self.commentaire)


def _nom(el: Element) -> str:
    tag = el.tag if isinstance(el.tag, str) else "?"
    return tag[len(NS) + 2 :] if tag.startswith("{" + NS + "}") else tag


def _en_dict(el: Element, chemin: str, doublons: list[str]) -> dict[str, Any]:
    """Children as a dict (leaves -> their text, ``arretTravail`` -> its attributes)."""
    out: dict[str, Any] = {}
    for enfant in el:
        nom = _nom(enfant)
        if nom in out:
            doublons.append(f"{chemin}{nom}")
        if len(enfant):
            out[nom] = _en_dict(enfant, f"{chemin}{nom}.", doublons)
        elif enfant.attrib:
            out[nom] = dict(enfant.attrib)
        else:
            out[nom] = enfant.text or ""
    return out


class MdphConnector(Connector):
    source = Source.MDPH
    media_types = ("application/xml", "text/xml")
    model = SignalementMdph
    nir_field = "personne.nir"

    def records(self, body: bytes) -> Iterator[Lu | Rejet]:
        try:
            racine = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        except DefusedXmlException as exc:
            yield Rejet("xml-interdit", f"DTDs, entities and external references are refused ({type(exc).__name__})")
            return
        except (ParseError, ValueError, LookupError, RecursionError) as exc:
            yield Rejet("xml-invalide", f"the body is not well-formed XML: {type(exc).__name__} {getattr(exc, 'position', '')}".rstrip())
            return
        if racine.tag != f"{{{NS}}}{RACINE}":
            yield Rejet(
                "xml-structure",
                f"the root element must be {RACINE} in namespace {NS} (see connectors/mdph.xsd)",
                ({"field": "(root)", "problem": f"expected {{{NS}}}{RACINE}"},),
            )
            return
        doublons: list[str] = []
        data = _en_dict(racine, "", doublons)
        if doublons:
            yield Rejet(
                "xml-structure",
                f"element(s) given more than once: {', '.join(sorted(set(doublons)))}",
                tuple({"field": d, "problem": "expected at most once"} for d in sorted(set(doublons))),
            )
            return
        yield Lu(data)
