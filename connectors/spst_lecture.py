"""Reading the SPST's FHIR R4 resources (``fhir.resources`` R4B models) into the hub's terms.

Pure functions over parsed models: the département of an address, the motif of a reason,
the consent of a ``Consent``, our optional extensions. Nothing here logs: a reason's text is
free text, and may only travel as the bounded comment.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from aiguillage.domain import COMMENTAIRE_MAX, Axe, Motif

INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
INSEE_EXT = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code"
EXT = "https://aiguillage.example/fhir/StructureDefinition/"
SYSTEME_MOTIF = "https://aiguillage.example/fhir/CodeSystem/motif"
SYSTEME_AXE = "https://aiguillage.example/fhir/CodeSystem/axe"

_CP = re.compile(r"^\d{5}$")

# A reason written as text (or a coding of another system, by its display): the first keyword
# found gives the motif. Lower-case, without accents; ordered from the most specific.
MOTS_MOTIF: tuple[tuple[str, Motif], ...] = (
    ("restriction", Motif.RESTRICTIONS_APTITUDE),
    ("inaptitude", Motif.INAPTITUDE),
    ("inapte", Motif.INAPTITUDE),
    ("rqth", Motif.RQTH),
    ("travailleur handicape", Motif.RQTH),
    ("reconversion", Motif.RECONVERSION),
    ("temps partiel", Motif.REPRISE_TEMPS_PARTIEL),
    ("mi-temps", Motif.REPRISE_TEMPS_PARTIEL),
    ("indemnites journalieres", Motif.RETARD_PAIEMENT_IJ),
    ("fin de droits", Motif.FIN_DE_DROITS),
    ("acces aux soins", Motif.ACCES_AUX_SOINS),
    ("isolement", Motif.ISOLEMENT),
    ("ressources", Motif.RESSOURCES),
    ("arret long", Motif.ARRET_LONG),
    ("arret de travail prolonge", Motif.ARRET_LONG),
)


def departement(commune_insee: str | None, code_postal: str | None) -> str | None:
    """The département: from the INSEE commune code when there is one, else from the postcode.

    Postcodes: metropolitan 2 digits (31000 -> 31); Corsica 20xxx -> 2A for 200xx-201xx
    (Corse-du-Sud), 2B for 202xx-206xx (Haute-Corse); overseas 97x -> 3 digits (97411 -> 974).
    None when neither gives one.
    """
    if commune_insee:
        code = commune_insee.upper()
        return code[:3] if code.startswith("97") else code[:2]
    if not code_postal or not _CP.match(code_postal):
        return None
    if code_postal.startswith("20"):
        return "2A" if code_postal[2] in "01" else "2B" if code_postal[2] in "23456" else None
    if code_postal.startswith("97"):
        return code_postal[:3]
    if code_postal.startswith(("00", "96", "98", "99")):
        return None  # no such metropolitan département (98: Monaco, New Caledonia...)
    return code_postal[:2]


def _sans_accents(texte: str) -> str:
    nfkd = unicodedata.normalize("NFKD", texte.lower())
    return " ".join("".join(c for c in nfkd if not unicodedata.combining(c)).split())


def motif_du_texte(texte: str) -> Motif | None:
    t = _sans_accents(texte)
    return next((m for mot, m in MOTS_MOTIF if mot in t), None)


def _codes(concepts: Iterable[Any]) -> Iterable[tuple[str | None, str | None, str | None]]:
    for concept in concepts:
        for coding in concept.coding or ():
            yield coding.system, coding.code, coding.display


def motif(concepts: Sequence[Any] | None) -> tuple[Motif | None, str | None]:
    """``ServiceRequest.reasonCode`` -> (motif, text to keep as comment).

    A coding whose code is one of our motifs (our system, or none) gives it; otherwise the
    text (``text``, else a coding's ``display``) is read for keywords; otherwise ``autre``
    with the text kept. (None, None): no reason at all.
    """
    if not concepts:
        return None, None
    for system, code, _ in _codes(concepts):
        if code and code in Motif._value2member_map_ and system in (None, SYSTEME_MOTIF):
            return Motif(code), None
    textes = [c.text for c in concepts if c.text] + [d for _, _, d in _codes(concepts) if d]
    if not textes:
        return None, None
    texte = " ; ".join(textes)
    return motif_du_texte(texte) or Motif.AUTRE, texte


def axe(concepts: Sequence[Any] | None) -> Axe | None:
    for system, code, _ in _codes(concepts or ()):
        if code and code in Axe._value2member_map_ and system in (None, SYSTEME_AXE):
            return Axe(code)
    return None


def extension(resource: Any, nom: str, attribut: str) -> Any:
    """The value of our extension ``nom`` (``valueCode``, ``valueBoolean``…), or None."""
    for ext in resource.extension or ():
        if ext.url == EXT + nom:
            return getattr(ext, attribut, None)
    return None


def commune_insee(adresse: Any) -> str | None:
    for ext in adresse.extension or ():
        if ext.url == INSEE_EXT:
            coding = ext.valueCoding
            return coding.code if coding is not None else (ext.valueCode or ext.valueString)
    return None


def nir(patient: Any) -> str | None:
    return next((i.value for i in patient.identifier or () if i.system == INS_NIR and i.value), None)


def consentement_du_consent(consents: Sequence[Any]) -> bool | None:
    """An active ``Consent``: provision permit -> True, deny -> False; otherwise unknown (None).
    A deny among several active consents wins: the hub does not contact on a doubt."""
    actifs = [c for c in consents if c.status == "active" and c.provision is not None and c.provision.type]
    if any(c.provision.type == "deny" for c in actifs):
        return False
    return True if any(c.provision.type == "permit" for c in actifs) else None


def commentaire(*morceaux: str | None) -> str | None:
    """The free texts joined, bounded to what the hub carries (the end is cut, never refused)."""
    texte = "\n".join(m for m in morceaux if m)
    return texte[:COMMENTAIRE_MAX] or None
