"""Ageing: waiting work climbs in priority so that low priority is never starved.

Within a file, order is effective priorité (1 first), then age, then id (a total,
deterministic order). The age counts from ``recu_le``, which an Affectation keeps
through escalations, transfers and réorientations: a transfer keeps the original age.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


def priorite_effective(priorite: int, depuis: datetime, maintenant: datetime, jours_par_niveau: int) -> int:
    """One level gained per ``jours_par_niveau`` days of waiting, never above 1 (most urgent)."""
    gagne = max(0, (maintenant - depuis).days) // jours_par_niveau
    return max(1, priorite - gagne)


def escalader(priorite: int, hausse: int) -> int:
    """An escalation raises the priorité (a smaller number), 1 at most."""
    return max(1, priorite - hausse)


@dataclass(frozen=True)
class EnAttente:
    signalement_id: str
    priorite: int
    recu_le: datetime


def cle_file(item: EnAttente, maintenant: datetime, jours_par_niveau: int) -> tuple[int, datetime, str]:
    return (priorite_effective(item.priorite, item.recu_le, maintenant, jours_par_niveau), item.recu_le, item.signalement_id)


def ordonner(items: Iterable[EnAttente], maintenant: datetime, jours_par_niveau: int) -> list[EnAttente]:
    return sorted(items, key=lambda i: cle_file(i, maintenant, jours_par_niveau))


def prochain(items: Iterable[EnAttente], maintenant: datetime, jours_par_niveau: int) -> EnAttente | None:
    return min(items, key=lambda i: cle_file(i, maintenant, jours_par_niveau), default=None)
