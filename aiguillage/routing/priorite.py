"""Ageing: waiting work climbs in priority so that low priority is never starved.

Within a file, order is effective priorité (1 first), then age, then id (a total,
deterministic order). The age counts from ``recu_le``, which an Affectation keeps
through escalations, transfers and réorientations: a transfer keeps the original age.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime


def priorite_effective(priorite: int, depuis: datetime, maintenant: datetime, jours_par_niveau: int) -> int:
    """One level gained per ``jours_par_niveau`` days of waiting, never above 1 (most urgent)."""
    gagne = max(0, (maintenant - depuis).days) // jours_par_niveau
    return max(1, priorite - gagne)


def escalader(priorite: int, hausse: int) -> int:
    """An escalation raises the priorité (a smaller number), 1 at most."""
    return max(1, priorite - hausse)


@dataclass(frozen=True, slots=True)  # one per waiting signalement: no per-instance dict
class EnAttente:
    signalement_id: str
    priorite: int
    recu_le: datetime


def cle_file(item: EnAttente, maintenant: datetime, jours_par_niveau: int) -> tuple[int, datetime, str]:
    return (priorite_effective(item.priorite, item.recu_le, maintenant, jours_par_niveau), item.recu_le, item.signalement_id)


def ordonner(items: Iterable[EnAttente], maintenant: datetime, jours_par_niveau: int) -> Iterator[EnAttente]:
    """In file order, lazily: a closure usually takes one or two items off a long file, so a heap
    (linear to build) rather than a sort of the whole file each time."""
    tas = [(cle_file(i, maintenant, jours_par_niveau), i) for i in items]  # keys are unique (id last)
    heapq.heapify(tas)
    while tas:
        yield heapq.heappop(tas)[1]


def prochain(items: Iterable[EnAttente], maintenant: datetime, jours_par_niveau: int) -> EnAttente | None:
    return min(items, key=lambda i: cle_file(i, maintenant, jours_par_niveau), default=None)
