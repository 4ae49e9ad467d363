"""Service médical: the daily extract of long sick leaves (arrêts de travail), as CSV.

Transport: batch file (``aiguillage ingest service-medical FILE``) or HTTP
``text/csv``. Example: ``connectors/exemples/service-medical.csv``.

Format: ``;``-separated, UTF-8 with or without BOM, a header row, one record per
line (no line breaks inside a field), French dates ``JJ/MM/AAAA``::

    reference;nir;sexe;date_naissance;commune_insee;code_postal;situation;risque;
    date_debut_arret;jours_arret;motif;axe_propose;consentement;commentaire

``sexe`` is the INSEE code (1 = M, 2 = F); ``consentement`` is ``O`` or ``N``;
``code_postal``, ``axe_propose``, ``commentaire`` (and their columns) are optional;
columns the hub does not know are ignored, so the extract may grow.

Lines are read one at a time (:meth:`ServiceMedicalConnector.lignes`), so a
national extract of hundreds of thousands of rows is never held in memory.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict

from aiguillage.dlq import Rejet
from aiguillage.domain import Axe, Motif, Risque, Sexe, Situation, Source
from connectors import champs
from connectors.base import Connector, Lu, PartnerRecord

COLONNES_REQUISES = (
    "reference", "nir", "sexe", "date_naissance", "commune_insee", "situation", "risque",
    "date_debut_arret", "jours_arret", "motif", "consentement",
)
COLONNES_OPTIONNELLES = ("code_postal", "axe_propose", "commentaire")
COLONNES = COLONNES_REQUISES + COLONNES_OPTIONNELLES


def _vide_en_none(v: Any) -> Any:
    return None if isinstance(v, str) and not v.strip() else v


_JJ_MM_AAAA = re.compile(r"(\d{2})/(\d{2})/(\d{4})")


def _date_fr(v: Any) -> Any:
    # A regex and date() rather than strptime: three times cheaper, and this runs on every row.
    if isinstance(v, str):
        m = _JJ_MM_AAAA.fullmatch(v.strip())
        try:
            if m is None:
                raise ValueError
            return date(int(m[3]), int(m[2]), int(m[1]))
        except ValueError:
            raise ValueError("expected a date JJ/MM/AAAA") from None
    return v


def _sexe_insee(v: Any) -> Any:
    return {"1": "M", "2": "F"}.get(v.strip(), v) if isinstance(v, str) else v


def _oui_non(v: Any) -> Any:
    if isinstance(v, str):
        if v.strip().upper() in ("O", "N"):
            return v.strip().upper() == "O"
        raise ValueError("expected O or N")
    return v


Optionnel = BeforeValidator(_vide_en_none)
DateFr = Annotated[date, BeforeValidator(_date_fr)]


class LigneServiceMedical(PartnerRecord):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    reference: champs.Reference
    nir: champs.NirSaisi
    sexe: Annotated[Sexe, BeforeValidator(_sexe_insee)]
    date_naissance: DateFr
    commune_insee: champs.CommuneInsee
    code_postal: Annotated[champs.CodePostal | None, Optionnel] = None
    situation: Situation
    risque: Risque
    date_debut_arret: Annotated[DateFr | None, Optionnel] = None
    jours_arret: Annotated[champs.JoursArret | None, Optionnel] = None
    motif: Motif
    axe_propose: Annotated[Axe | None, Optionnel] = None
    consentement: Annotated[bool, BeforeValidator(_oui_non)]
    commentaire: Annotated[champs.Commentaire | None, Optionnel] = None

    def nir_en_clair(self) -> str:
        return self.nir

    def canonique(self) -> dict[str, Any]:
        return champs.canonique(
            annee_naissance=self.date_naissance.year, sexe=self.sexe, commune_insee=self.commune_insee,
            code_postal=self.code_postal, situation=self.situation, risque=self.risque, motif=self.motif,
            axe=self.axe_propose, arret=(self.date_debut_arret, self.jours_arret),
            consentement=self.consentement, commentaire=self.commentaire)


def _decoder(brut: bytes, ligne: int) -> str | Rejet:
    try:
        txt = brut.decode("utf-8-sig" if ligne == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        return Rejet("encodage-invalide", f"line {ligne} is not UTF-8 text (byte {exc.start})", ligne=ligne)
    return txt.rstrip("\r\n")


def _champs(txt: str, ligne: int) -> list[str] | Rejet:
    try:
        return next(csv.reader([txt], delimiter=";", quotechar='"', strict=True))
    except (csv.Error, StopIteration) as exc:
        return Rejet("csv-invalide", f"line {ligne} is not a ';'-separated CSV row: {exc}", ligne=ligne)


class ServiceMedicalConnector(Connector):
    source = Source.SERVICE_MEDICAL
    media_types = ("text/csv",)
    model = LigneServiceMedical
    nir_field = "nir"

    def records(self, body: bytes) -> Iterator[Lu | Rejet]:
        return self.lignes(body.splitlines())

    def lignes(self, lignes: Iterable[bytes]) -> Iterator[Lu | Rejet]:
        """Records from raw lines (header first); line numbers count the header as line 1.

        A header problem refuses the whole file (one Rejet, line 1); a bad line is
        one Rejet with its number and the reading goes on.
        """
        entete: list[str] | None = None
        brut_entete = b""
        for numero, brut in enumerate(lignes, start=1):
            # What the DLQ keeps of a bad row: the header and that row, a one-row file to replay.
            piece = brut_entete + brut.rstrip(b"\r\n") + b"\n" if entete is not None else None
            txt = _decoder(brut, numero)
            if isinstance(txt, Rejet):
                yield replace(txt, brut=piece)
                if entete is None:
                    return
                continue
            if entete is None:
                champs = _champs(txt, numero)
                if isinstance(champs, Rejet):
                    yield champs
                    return
                entete = [c.strip().lower() for c in champs]
                brut_entete = brut.rstrip(b"\r\n") + b"\n"
                manquantes = [c for c in COLONNES_REQUISES if c not in entete]
                if manquantes:
                    yield Rejet(
                        "colonne-manquante",
                        f"the header row lacks column(s): {', '.join(manquantes)}",
                        tuple({"field": c, "problem": "missing column"} for c in manquantes),
                        1,
                    )
                    return
                continue
            if not txt.strip():
                continue  # blank lines (a trailing newline) are not records
            champs = _champs(txt, numero)
            if isinstance(champs, Rejet):
                yield replace(champs, brut=piece)
                continue
            if len(champs) != len(entete):
                yield Rejet(
                    "csv-invalide",
                    f"line {numero} has {len(champs)} field(s), the header has {len(entete)}",
                    ligne=numero,
                    brut=piece,
                )
                continue
            yield Lu({k: v for k, v in zip(entete, champs, strict=True) if k in COLONNES}, numero, piece)
        if entete is None:
            yield Rejet("colonne-manquante", "the file is empty: expected a header row", ligne=1)
