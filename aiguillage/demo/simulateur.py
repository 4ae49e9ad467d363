"""The simulated partners and caseworkers, as a pure generator of timed events.

:func:`simuler` draws assurés arriving over ``[debut, fin)`` as a Poisson process
and, for each, what the caseworker side does (prise en charge, entretiens,
préconisations, clôture), with the distributions of :mod:`aiguillage.demo.parametres`.
Events are yielded in time order; the runner decides how to send them and how
fast (time compression), the tests feed them to the aggregation arithmetic.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiguillage import nir as nirs
from aiguillage.demo.parametres import Parametres, normaliser
from aiguillage.domain import departement_de_commune, signalement_id, tranche_age

NS_SUIVI = uuid.uuid5(uuid.NAMESPACE_URL, "urn:aiguillage:demo:suivi")
MOTIFS = {"PDP": ["arret-long", "inaptitude", "restrictions-aptitude", "rqth", "reconversion"],
          "SPS": ["retard-paiement-ij", "acces-aux-soins", "ressources", "isolement", "fin-de-droits"]}
AGES = {"<26": (18, 25), "26-45": (26, 45), "46-59": (46, 59), "60+": (60, 66)}


@dataclass(frozen=True, order=True)
class Evenement:
    t: datetime
    ordre: int  # ties keep creation order (signalement before its suivis)
    nature: str  # "signalement" | "suivi"
    record: Any  # the canonical Avro dict
    nir: str | None = None  # the clear NIR, for posting in a partner's native format


def _tirer(rng: random.Random, poids: dict[str, float]) -> str:
    p = normaliser(poids)
    return rng.choices(list(p), weights=list(p.values()))[0]


def _poisson(rng: random.Random, moyenne: float) -> int:
    # Knuth: fine for the small means used here.
    import math

    seuil, k, produit = math.exp(-moyenne), 0, rng.random()
    while produit > seuil:
        k += 1
        produit *= rng.random()
    return k


def _nir(rng: random.Random, sexe: str, annee: int, commune: str) -> str:
    corps = f"{1 if sexe == 'M' else 2}{annee % 100:02d}{rng.randint(1, 12):02d}{commune}{rng.randint(1, 999):03d}"
    return nirs.avec_cle(corps)


def suivi_id(sid: str, n: int) -> str:
    return str(uuid.uuid5(NS_SUIVI, f"{sid}:{n}"))


def simuler(
    params: Parametres,
    debut: datetime,
    fin: datetime,
    seed: int = 0,
    pseudonymiser: Callable[[str], str] | None = None,
    echelle: float = 1.0,
) -> Iterator[Evenement]:
    """Events in time order; follow-ups that would fall after ``fin`` are not produced."""
    rng = random.Random(seed)
    pseudo = pseudonymiser or (lambda n: uuid.uuid5(uuid.NAMESPACE_OID, n).hex * 2)
    duree = (fin - debut).total_seconds()
    taux = params.assures_par_an / params.taux_prise_en_charge * echelle / (365 * 86400)  # per second
    tas: list[Evenement] = []
    ordre = 0

    def planifier(t: datetime, nature: str, record: dict[str, Any], nir: str | None = None) -> None:
        nonlocal ordre
        if t < fin:
            heapq.heappush(tas, Evenement(t, ordre, nature, record, nir))
            ordre += 1

    t = debut
    n_assure = 0
    while True:
        t = t + timedelta(seconds=rng.expovariate(taux))
        # Emit what is due before the next arrival, so the generator stays lazy.
        while tas and tas[0].t <= min(t, fin):
            yield heapq.heappop(tas)
        if t >= fin:
            break
        n_assure += 1
        _assure(params, rng, t, n_assure, pseudo, planifier)
    actions = int(params.actions_collectives_par_an * duree / (365 * 86400) * echelle + 0.5)
    for i in range(actions):
        quand = debut + timedelta(seconds=duree * (i + 0.5) / actions)
        planifier(quand, "suivi", {
            "suivi_id": str(uuid.uuid5(NS_SUIVI, f"action:{seed}:{i}")), "signalement_id": None,
            "type": "action-collective", "survenu_le": quand, "seances": params.seances_par_action,
            "participants": params.participants_par_action,
        })
    while tas:
        yield heapq.heappop(tas)


def _assure(params: Parametres, rng: random.Random, t: datetime, n: int,
            pseudo: Callable[[str], str], planifier: Callable[..., None]) -> None:
    source = _tirer(rng, params.sources)
    axe = _tirer(rng, params.axes)
    sexe = _tirer(rng, params.sexes)
    lo, hi = AGES[_tirer(rng, params.tranches_age)]
    annee_naissance = t.year - rng.randint(lo, hi)
    commune = _tirer(rng, params.communes)
    nir = _nir(rng, sexe, annee_naissance, commune)
    ref = f"DEMO-{source}-{t:%Y%m%d}-{n:06d}"
    sid = signalement_id(source, ref)
    arret = axe == "PDP" or rng.random() < 0.5
    signalement = {
        "signalement_id": sid, "source": source, "source_ref": ref, "recu_le": t,
        "nir_pseudonyme": pseudo(nir), "annee_naissance": annee_naissance, "tranche_age": None,
        "sexe": sexe, "code_postal": None, "commune_insee": commune,
        "departement": departement_de_commune(commune), "situation": _tirer(rng, params.situations),
        "risque": _tirer(rng, params.risques),
        "arret_debut": (t - timedelta(days=rng.randint(20, 200))).date() if arret else None,
        "arret_jours": rng.randint(30, 400) if arret else None,
        "motif": rng.choice(MOTIFS[axe]), "axe_suggere": axe, "consentement": True, "commentaire": None,
    }
    planifier(t, "signalement", signalement, nir)
    k = 0

    def suivi(quand: datetime, type_: str, **champs: Any) -> None:
        nonlocal k
        k += 1
        planifier(quand, "suivi", {"suivi_id": suivi_id(sid, k), "signalement_id": sid, "type": type_,
                                   "survenu_le": quand, **champs})

    contact = t + timedelta(days=rng.expovariate(1 / params.delai_premier_contact_moyen_jours))
    if rng.random() >= params.taux_prise_en_charge:
        suivi(contact, rng.choice(["refus", "annulation"]))
        return
    suivi(contact, "prise-en-charge")
    lo_d, hi_d = params.duree_jours[axe]
    fin_acc = contact + timedelta(days=rng.uniform(lo_d, hi_d))
    # At least one entretien per accompanied assuré; the mean is the seeds'.
    nb = 1 + _poisson(rng, params.entretiens_par_assure[axe] - 1)
    span = (fin_acc - contact).total_seconds()
    for i in range(nb):
        quand = contact + timedelta(seconds=span * i / nb + rng.uniform(0, 3600))
        suivi(quand, "entretien", mode_entretien=_tirer(rng, params.modes_entretien))
    if axe == "PDP":
        for _ in range(_poisson(rng, params.preconisations_par_assure_pdp)):
            suivi(contact + timedelta(seconds=rng.uniform(0, span)), "preconisation",
                  preconisation=_tirer(rng, params.preconisations))
    issues = params.issues_pdp if axe == "PDP" else params.issues_sps
    suivi(fin_acc, "cloture", issue=_tirer(rng, issues))


def affectation_simulee(s: dict[str, Any], decide_le: datetime | None = None) -> dict[str, Any]:
    """What routing decides, for offline runs without a worker: file <dép>-<axe>, 10 days."""
    axe = s["axe_suggere"] or "SPS"
    return {
        "signalement_id": s["signalement_id"], "sequence": 0, "nature": "initiale",
        "source": s["source"], "source_ref": s["source_ref"], "nir_pseudonyme": s["nir_pseudonyme"],
        "recu_le": s["recu_le"], "departement": s["departement"], "file": f"{s['departement']}-{axe}",
        "equipe": s["departement"], "axe": axe, "priorite": 3, "assistant": None,
        "regle": "demo", "config_version": "demo", "explication": "demo",
        "echeance_premier_contact": (s["recu_le"] + timedelta(days=10)).date(),
        "decide_le": decide_le or s["recu_le"],
        "sexe": s["sexe"], "risque": s["risque"],
        "tranche_age": s.get("tranche_age") or (
            None if s.get("annee_naissance") is None else tranche_age(s["annee_naissance"], s["recu_le"].astimezone(UTC).year)
        ),
    }


def cpam_natif(s: dict[str, Any], nir: str) -> dict[str, Any]:
    """The CPAM's native JSON for a simulated signalement (what its gateway connector reads)."""
    out: dict[str, Any] = {
        "reference": s["source_ref"], "date_signalement": date.isoformat(s["recu_le"].date()),
        "assure": {"nir": nir, "sexe": s["sexe"], "annee_naissance": s["annee_naissance"],
                   "commune_insee": s["commune_insee"]},
        "situation_professionnelle": s["situation"], "risque": s["risque"], "motif": s["motif"],
        "axe_propose": s["axe_suggere"], "consentement": s["consentement"],
    }
    if s["arret_debut"]:
        out["arret_travail"] = {"debut": s["arret_debut"].isoformat(), "jours": s["arret_jours"]}
    return out
