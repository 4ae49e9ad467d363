"""Who may do what: roles from an OpenID Connect claim, and the rights checks, pure.

The claim (``AIGUILLAGE_OIDC_ROLES_CLAIM``, default ``aiguillage_roles``) is a list of strings
(a single space-separated string is accepted too), each one habilitation:

- ``assistant:<équipe>``                 a caseworker of that team, e.g. ``assistant:31-toulouse``
- ``responsable:<équipe>``               the manager of a team, e.g. ``responsable:31-toulouse``
- ``responsable:territoire:<dép.>``      the manager of a territory, e.g. ``responsable:territoire:31``
- ``pilotage``                           figures and the dashboard only, no personal row
- ``admin``                              the DLQ and its replay, partner tokens, configuration

Unknown entries are ignored (an identity provider may send other roles in the same claim).
Each check answers None when allowed, else the name of the missing right, which a 403 names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    ASSISTANT = "assistant"
    RESPONSABLE = "responsable"
    PILOTAGE = "pilotage"
    ADMIN = "admin"


class Droit(StrEnum):
    """The rights the endpoints name (in a 403's body and in the OpenAPI descriptions)."""

    LIRE_FILES = "lire-files"  # waiting signalements of a team (personal rows)
    POSTER_SUIVI = "poster-suivi"  # a caseworker-side event on a signalement a team holds
    LIRE_CHARGES = "lire-charges"  # caseloads of a team's caseworkers
    REAFFECTER = "reaffecter"  # move a signalement within a team or territory
    LIRE_AGREGATS = "lire-agregats"  # the figures (masked) and the dashboard
    ADMINISTRER = "administrer"  # DLQ, tokens, configuration
    LIRE_METRIQUES = "lire-metriques"  # /metrics when AIGUILLAGE_METRICS_PUBLIC=false


# Which roles may reach an endpoint at all; the per-team checks below then narrow it.
ROLES_DU_DROIT: dict[Droit, frozenset[Role]] = {
    Droit.LIRE_FILES: frozenset({Role.ASSISTANT, Role.RESPONSABLE}),
    Droit.POSTER_SUIVI: frozenset({Role.ASSISTANT, Role.RESPONSABLE}),
    Droit.LIRE_CHARGES: frozenset({Role.RESPONSABLE}),
    Droit.REAFFECTER: frozenset({Role.RESPONSABLE}),
    Droit.LIRE_AGREGATS: frozenset({Role.PILOTAGE, Role.RESPONSABLE, Role.ADMIN}),
    Droit.ADMINISTRER: frozenset({Role.ADMIN}),
    Droit.LIRE_METRIQUES: frozenset({Role.ADMIN}),
}


@dataclass(frozen=True)
class Habilitation:
    role: Role
    equipe: str | None = None  # assistant, responsable of a team
    territoire: str | None = None  # responsable of a territory (a département)

    def __str__(self) -> str:
        if self.territoire is not None:
            return f"{self.role}:territoire:{self.territoire}"
        return f"{self.role}:{self.equipe}" if self.equipe else str(self.role)


@dataclass(frozen=True)
class Personne:
    """A member of staff as their token says: the subject and their habilitations."""

    sub: str
    habilitations: tuple[Habilitation, ...]

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(h.role for h in self.habilitations)

    @property
    def role(self) -> str:
        """What the audit records: the habilitations, most specific first, in one string."""
        return " ".join(str(h) for h in self.habilitations) or "aucun"


def habilitation(entree: str) -> Habilitation | None:
    parts = entree.strip().split(":")
    try:
        role = Role(parts[0])
    except ValueError:
        return None
    if role in (Role.PILOTAGE, Role.ADMIN):
        return Habilitation(role) if len(parts) == 1 else None
    if role is Role.RESPONSABLE and len(parts) == 3 and parts[1] == "territoire" and parts[2]:
        return Habilitation(role, territoire=parts[2])
    if len(parts) == 2 and parts[1] and parts[1] != "territoire":
        return Habilitation(role, equipe=parts[1])
    return None


def personne(claims: Mapping[str, Any], claim: str = "aiguillage_roles") -> Personne:
    valeur = claims.get(claim) or []
    entrees = valeur.split() if isinstance(valeur, str) else [v for v in valeur if isinstance(v, str)]
    habs = tuple(h for h in (habilitation(e) for e in entrees) if h is not None)
    return Personne(str(claims.get("sub", "")), tuple(dict.fromkeys(habs)))


def exige(p: Personne, droit: Droit) -> str | None:
    """The coarse check of an endpoint: some habilitation of ``p`` may hold ``droit``."""
    return None if p.roles & ROLES_DU_DROIT[droit] else droit.value


def _gere(h: Habilitation, equipe: str, territoire_de: Mapping[str, str]) -> bool:
    """``h`` manages ``equipe``: its responsable, or the responsable of its territory."""
    if h.role is not Role.RESPONSABLE:
        return False
    return h.equipe == equipe if h.territoire is None else territoire_de.get(equipe) == h.territoire


def peut_lire_equipe(p: Personne, equipe: str | None, territoire_de: Mapping[str, str]) -> str | None:
    """Files and signalements held by ``equipe``: its assistants, its responsable or its territory's."""
    if equipe is not None:
        for h in p.habilitations:
            if (h.role is Role.ASSISTANT and h.equipe == equipe) or _gere(h, equipe, territoire_de):
                return None
    return Droit.LIRE_FILES.value


def peut_poster_suivi(p: Personne, equipe: str | None, territoire_de: Mapping[str, str]) -> str | None:
    """A suivi on a signalement held by ``equipe`` (None: no team holds it, nobody may)."""
    if equipe is not None:
        for h in p.habilitations:
            if (h.role is Role.ASSISTANT and h.equipe == equipe) or _gere(h, equipe, territoire_de):
                return None
    return Droit.POSTER_SUIVI.value


def peut_lire_charges(p: Personne, equipe: str, territoire_de: Mapping[str, str]) -> str | None:
    return None if any(_gere(h, equipe, territoire_de) for h in p.habilitations) else Droit.LIRE_CHARGES.value


def peut_reaffecter(p: Personne, de: str | None, vers: str, territoire_de: Mapping[str, str]) -> str | None:
    """From team ``de`` to team ``vers`` (the same team for a change of axe): the responsable
    of that team (within it only), or of a territory holding both."""
    if de is not None:
        for h in p.habilitations:
            if _gere(h, de, territoire_de) and _gere(h, vers, territoire_de):
                return None
    return Droit.REAFFECTER.value


def equipes_visibles(p: Personne, territoire_de: Mapping[str, str]) -> frozenset[str]:
    """The teams whose files ``p`` may read, among the configured ones."""
    return frozenset(e for e in territoire_de if peut_lire_equipe(p, e, territoire_de) is None)


def droits_de(p: Personne) -> list[str]:
    return sorted(d.value for d in Droit if exige(p, d) is None)
