"""A signalement's arrival, pure: dedup, then the stateless decision, then where it goes.

State: ``assures[nir_pseudonyme]`` (:class:`Assure`): the team of the assuré's last case (the
référent unique's hint) and every signalement id routed for them within ``HORIZON_DEDUP`` of
its first routing. A resend (same ``signalement_id``) within that horizon is dropped, however
many signalements came between; past it, it would be routed again (a partner resending a
signalement more than a year later). Expired ids are pruned whenever the entry is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from aiguillage.domain import Affectation, Signalement
from aiguillage.routing.affectation import orienter
from aiguillage.routing.config_file import Moteur
from aiguillage.routing.messages import Nouveau

HORIZON_DEDUP = timedelta(days=400)


class Assure(BaseModel):
    """``assures[nir_pseudonyme]``: the référent's team hint and the signalements already routed."""

    model_config = ConfigDict(extra="ignore")
    equipe: str | None = None
    vus: dict[str, date] = Field(default_factory=dict)  # signalement_id -> day it was first routed

    @classmethod
    def lire(cls, raw: object) -> Assure:
        if not raw:
            return cls()
        if isinstance(raw, dict) and isinstance(raw.get("vus"), list):  # before the horizon: a list of ids
            return cls(equipe=raw.get("equipe"), vus=dict.fromkeys(raw["vus"], date.min))
        return cls.model_validate(raw)

    def a_vu(self, sid: str) -> bool:
        return sid in self.vus


@dataclass(frozen=True)
class VersEquipe:
    equipe: str
    message: Nouveau


@dataclass(frozen=True)
class SansEquipe:
    """No team (a territory outside the configuration): the visible queue gets it as it is."""

    aff: Affectation


Routage = VersEquipe | SansEquipe


def accueillir(assure: Assure, s: Signalement, moteur: Moteur, maintenant: datetime) -> Routage | None:
    """Where a new signalement goes; None for a resend within the horizon."""
    if assure.a_vu(s.signalement_id):
        return None
    o = orienter(moteur, s, maintenant)
    aff = o.affectation
    if aff.equipe is None:
        return SansEquipe(aff)
    # Référent unique: first to the team of the assuré's last case, which may hold it open.
    equipe = assure.equipe or aff.equipe
    return VersEquipe(equipe, Nouveau(aff=aff, placer=o.a_placer, territoire=aff.equipe))


def retenir(assure: Assure, routes: list[tuple[Signalement, Routage]], maintenant: datetime) -> Assure:
    """The entry once the batch's routings for this assuré are acknowledged: their ids seen, the
    team of the first case as the hint if there was none, expired ids gone."""
    jour, limite = maintenant.date(), (maintenant - HORIZON_DEDUP).date()
    vus = {sid: quand for sid, quand in assure.vus.items() if quand >= limite or quand == date.min}
    equipe = assure.equipe
    for s, r in routes:
        vus.setdefault(s.signalement_id, jour)
        if equipe is None and isinstance(r, VersEquipe):
            equipe = r.message.territoire
    # Ids carried over from the older list format have no date: they age from today.
    vus = {sid: (jour if quand == date.min else quand) for sid, quand in vus.items()}
    return Assure(equipe=equipe, vus=vus)


def expire(assure: Assure, maintenant: datetime) -> bool:
    """Nothing of this assuré's entry is within the horizon any more: it may be forgotten (their
    next signalement starts afresh; an open case is found by its team, not by this hint)."""
    limite = (maintenant - HORIZON_DEDUP).date()
    return all(quand != date.min and quand < limite for quand in assure.vus.values())
