"""Builders for routing tests: a plausible canonical signalement, changed field by field."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from aiguillage.domain import Signalement, Source, signalement_id

RECU_LE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def nir_pseudo(n: int | str) -> str:
    return hashlib.sha256(f"assure-{n}".encode()).hexdigest()


def sig(ref: str = "REF-1", **changes: Any) -> Signalement:
    source = Source(changes.pop("source", "cpam"))
    data: dict[str, Any] = {
        "signalement_id": signalement_id(source, ref),
        "source": source,
        "source_ref": ref,
        "recu_le": RECU_LE,
        "nir_pseudonyme": nir_pseudo(ref),
        "annee_naissance": 1975,
        "sexe": "F",
        "commune_insee": "31555",
        "code_postal": "31000",
        "departement": "31",
        "situation": "salarie",
        "risque": "maladie",
        "arret_jours": None,
        "motif": "autre",
        "axe_suggere": None,
        "consentement": True,
    }
    data.update(changes)
    return Signalement.model_validate(data)


def config_3_equipes(capacite: int = 1, version: str | None = None, prefixe: str = "") -> str:
    """Three teams on two départements: 31-a overflows into 31-b, 34-a waits.

    ``prefixe`` goes before caseworker ids, so that tests sharing a broker tell theirs apart.
    """
    head = f"version: {version}\n" if version else ""
    c = capacite
    texte = f"""
territoires:
  "31":
    nom: Haute-Garonne
    equipe_par_defaut: 31-a
    equipes:
      - id: 31-a
        communes: ["31555"]
        debordement: 31-b
        assistants:
          - {{id: a1, competences: [PDP, SPS], capacite: {3 * c}}}
          - {{id: a2, competences: [PDP], capacite: {2 * c}}}
          - {{id: a3, competences: [SPS], capacite: {2 * c}}}
      - id: 31-b
        communes: ["31483"]
        assistants:
          - {{id: b1, competences: [PDP, SPS], capacite: {2 * c}}}
  "34":
    nom: Hérault
    equipe_par_defaut: 34-a
    equipes:
      - id: 34-a
        assistants:
          - {{id: c1, competences: [PDP, SPS], capacite: {3 * c}}}
          - {{id: c2, competences: [SPS], capacite: {1 * c}}}
regles:
  - id: consentement-manquant
    pourquoi: consentement à recueillir
    si: {{consentement: false}}
    alors: {{axe: suggere, priorite: 3, delai_jours: 5, file: "{{departement}}-recueil-consentement"}}
  - id: arret
    pourquoi: arrêt de travail en cours
    si: {{arret_jours_min: 1}}
    alors: {{axe: PDP, priorite: 2, delai_jours: 10}}
  - id: defaut
    pourquoi: accompagnement en santé
    alors: {{axe: SPS, priorite: 4, delai_jours: 20}}
"""
    for a in ("a1", "a2", "a3", "b1", "c1", "c2"):
        texte = texte.replace(f"{{id: {a},", f"{{id: {prefixe}{a},")
    return head + texte
