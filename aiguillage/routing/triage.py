"""Triage: the first rule whose conditions hold decides axe, priorité and first-contact delay.

Rules are compiled once into tuples of small predicates; :func:`trier` only walks them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from aiguillage.domain import Axe, Signalement, TrancheAge
from aiguillage.routing.config_file import Conditions, Decision, Moteur, Regle

Predicat = Callable[[Signalement], bool]

# An age band's bounds, for partners that send a band instead of a year of birth.
_BORNES_TRANCHE = {
    TrancheAge.MOINS_26: (0, 25),
    TrancheAge.DE_26_A_45: (26, 45),
    TrancheAge.DE_46_A_59: (46, 59),
    TrancheAge.PLUS_60: (60, 130),
}


def bornes_age(s: Signalement) -> tuple[int, int] | None:
    """The assuré's age at reception (a one-point range), or their band's range, or None."""
    if s.annee_naissance is not None:
        age = s.recu_le.year - s.annee_naissance
        return age, age
    if s.tranche_age is not None:
        return _BORNES_TRANCHE[s.tranche_age]
    return None


def _parmi(attr: str, ok: frozenset[object], s: Signalement) -> bool:
    return getattr(s, attr) in ok


def _consentement(v: bool, s: Signalement) -> bool:
    # An unknown consent (None) is not a yes: ``consentement: false`` takes it to the consent queue.
    return (s.consentement is True) is v


def _arret_au_moins(m: int, s: Signalement) -> bool:
    return s.arret_jours is not None and s.arret_jours >= m


def _arret_au_plus(m: int, s: Signalement) -> bool:
    return s.arret_jours is None or s.arret_jours <= m


def _predicats(c: Conditions) -> tuple[Predicat, ...]:
    preds: list[Predicat] = []
    for attr in ("source", "motif", "risque", "situation", "axe_suggere"):
        valeurs = getattr(c, attr)
        if valeurs is not None:
            ok = frozenset(valeurs)
            preds.append(partial(_parmi, attr, ok))
    if c.consentement is not None:
        preds.append(partial(_consentement, c.consentement))
    if c.arret_jours_min is not None:
        preds.append(partial(_arret_au_moins, c.arret_jours_min))
    if c.arret_jours_max is not None:
        preds.append(partial(_arret_au_plus, c.arret_jours_max))
    if c.age_min is not None or c.age_max is not None:
        lo, hi = c.age_min if c.age_min is not None else 0, c.age_max if c.age_max is not None else 130

        def age_ok(s: Signalement, lo: int = lo, hi: int = hi) -> bool:
            b = bornes_age(s)  # a band matches only when it lies wholly inside the bounds
            return b is not None and lo <= b[0] and b[1] <= hi

        preds.append(age_ok)
    return tuple(preds)


@dataclass(frozen=True)
class RegleCompilee:
    id: str
    pourquoi: str
    alternatives: tuple[tuple[Predicat, ...], ...]  # OR of ANDs
    alors: Decision
    rang: int

    def s_applique(self, s: Signalement) -> bool:
        # Plain loops, not any(all(...)): two generators per rule were half of the triage's cost.
        for conj in self.alternatives:
            for p in conj:
                if not p(s):
                    break
            else:
                return True
        return False


def compiler(regles: Sequence[Regle]) -> tuple[RegleCompilee, ...]:
    out = []
    for rang, r in enumerate(regles, start=1):
        blocs = r.si if isinstance(r.si, list) else [r.si]
        out.append(RegleCompilee(r.id, r.pourquoi, tuple(_predicats(c) for c in blocs), r.alors, rang))
    return tuple(out)


@dataclass(frozen=True)
class Tri:
    regle: str
    rang: int
    pourquoi: str
    axe: Axe
    priorite: int
    delai_jours: int
    file_speciale: str | None  # a named queue without caseworker (e.g. consent collection)


def trier(moteur: Moteur, s: Signalement) -> Tri:
    """The first matching rule's decision. The last rule has no condition, so one always matches."""
    for r in moteur.regles:
        if r.s_applique(s):
            d = r.alors
            if d.axe == "suggere":
                axe = s.axe_suggere or d.axe_defaut
            else:
                axe = Axe(d.axe)
            return Tri(r.id, r.rang, r.pourquoi, axe, d.priorite, d.delai_jours, d.file)
    raise AssertionError("the configuration's last rule has no condition")  # checked at load time
