"""Aggregation arithmetic: what one dossier contributes to the live figures.

A *dossier* is everything known about one signalement, keyed by its
``signalement_id``: the signalement itself, its latest affectation, its
escalations and its suivis (an action collective is a dossier of its own,
keyed ``action:<suivi_id>``). It is plain JSON, so a Faust table can hold it.

:func:`contributions` is the single definition of every figure: the counts (and
histogram samples, for delays and durations) that a dossier adds, as a pure
function of its state. Applying an event is then idempotent by construction
(a resent suivi or an older affectation does not change the dossier), an
incremental update is ``contributions(after) - contributions(before)``, and a
recovery is the sum over the recovered dossiers.

A dossier's ~60 keys come in a few *groupes*: an indicator, its plan, a day and the values the
plan reads, which name the keys together (:func:`groupes`, :func:`etendre`). The live stage
keeps a batch's changes as groups and expands them once per publication: signalements of the
same day and profile share a group, and a suivi changes a few groups, not every key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from itertools import repeat
from typing import Any

from aiguillage.agregats.periodes import ANNEE, COURANT, JOUR, MOIS, SEMAINE, cle, periode

# A contribution: (aggregate key, histogram bucket in days or None for a plain count) -> n.
Contribution = tuple[str, int | None]

EXTERNES = ("spst", "cap-emploi", "mdph")
FIN = ("cloture", "refus", "annulation")
NON_ATTRIBUE = "non-attribue"

# Which breakdowns each indicator has, per period type. A département cross of
# each breakdown is added for the periods in DEPARTEMENTALES, so that the API
# and the bilan can filter on a territory.
SIGNALEMENTS = {
    JOUR: [(), ("source",)],
    SEMAINE: [(), ("source",), ("axe",)],
    MOIS: [(), ("source",), ("axe",), ("sexe",), ("tranche_age",), ("risque",), ("file",)],
    ANNEE: [(), ("source",), ("axe",), ("sexe",), ("tranche_age",), ("risque",), ("file",),
            ("axe", "source"), ("axe", "sexe"), ("axe", "tranche_age"), ("axe", "risque")],
}
DEPARTEMENTALES = (SEMAINE, MOIS, ANNEE)
PAR_AXE = [(), ("axe",)]
PAR_FILE = [(), ("axe",), ("file",)]


def _ms(t: datetime | int) -> int:
    return t if isinstance(t, int) else int(t.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _iso(d: date | str) -> str:
    return d if isinstance(d, str) else d.isoformat()


def tranche(annee_naissance: int | None, tranche_age: str | None, annee: int) -> str:
    if tranche_age:
        return tranche_age
    if annee_naissance is None:
        return "inconnue"
    age = annee - annee_naissance
    return "<26" if age < 26 else "26-45" if age <= 45 else "46-59" if age <= 59 else "60+"


# -- applying events (pure, idempotent) --------------------------------------------------


def nouveau() -> dict[str, Any]:
    return {"sig": None, "aff": None, "escalades": {}, "suivis": {}}


def appliquer_signalement(d: dict[str, Any] | None, s: Mapping[str, Any]) -> dict[str, Any]:
    d = dict(d or nouveau())
    if d["sig"] is None:  # a resend is the same signalement: the first one stands
        recu = _ms(s["recu_le"])
        d["sig"] = {
            "source": s["source"], "sexe": s["sexe"], "risque": s["risque"],
            "departement": s["departement"], "recu_le": recu,
            "tranche_age": tranche(s.get("annee_naissance"), s.get("tranche_age"), _dt(recu).year),
        }
    return d


def profil_de_l_affectation(a: Mapping[str, Any]) -> dict[str, Any] | None:
    """The signalement's part of a dossier, from an Affectation v3 (which carries the profile)."""
    if a.get("sexe") is None or a.get("risque") is None:
        return None  # v1/v2: only the signalement itself has it
    recu = _ms(a["recu_le"])
    return {
        "source": a["source"], "sexe": a["sexe"], "risque": a["risque"], "departement": a["departement"],
        "recu_le": recu, "tranche_age": tranche(None, a.get("tranche_age"), _dt(recu).year),
    }


def appliquer_affectation(d: dict[str, Any] | None, a: Mapping[str, Any]) -> dict[str, Any]:
    d = dict(d or nouveau())
    if d["sig"] is None:  # the live agent reads affectations only: the first one brings the profile
        d["sig"] = profil_de_l_affectation(a)
    seq = int(a.get("sequence") or 0)
    if a.get("nature") == "escalade":
        # An escalation is a first-contact deadline breach; keyed by sequence: counted once.
        esc = dict(d["escalades"])
        esc.setdefault(str(seq), {"le": _ms(a["decide_le"]), "file": a["file"],
                                  "departement": a["departement"], "axe": a["axe"]})
        d["escalades"] = esc
    if d["aff"] is None or seq > d["aff"]["sequence"]:
        d["aff"] = {
            "sequence": seq, "source": a["source"], "axe": a["axe"], "file": a["file"],
            "departement": a["departement"], "assistant": a.get("assistant"),
            "recu_le": _ms(a["recu_le"]), "echeance": _iso(a["echeance_premier_contact"]),
        }
    return d


def appliquer_suivi(d: dict[str, Any] | None, s: Mapping[str, Any]) -> dict[str, Any]:
    d = dict(d or nouveau())
    if s["suivi_id"] in d["suivis"]:
        return d  # a resent suivi is the same suivi
    suivis = dict(d["suivis"])
    suivis[s["suivi_id"]] = {
        k: v for k, v in {
            "type": s["type"], "t": _ms(s["survenu_le"]), "mode": s.get("mode_entretien"),
            "preco": s.get("preconisation"), "issue": s.get("issue"),
            "assistant": s.get("assistant"), "seances": s.get("seances"),
            "participants": s.get("participants"),
        }.items() if v is not None
    }
    d["suivis"] = suivis
    return d


# -- what a dossier contributes -------------------------------------------------------------


class Plan:
    """Where an indicator files a dossier: per period type, its breakdowns, each also crossed
    with the département where the period allows. Built once per call site at import, and
    hashed by identity: a cache key that costs nothing to hash (rebuilding and hashing the
    nested tuples was a third of the figures' cost, measured with ``aiguillage bench``)."""

    __slots__ = ("etapes", "noms")

    def __init__(self, jeux: Mapping[str, list[tuple[str, ...]]] | list[tuple[str, ...]],
                 periodes: Iterable[str] = (MOIS, ANNEE), departement: bool = True) -> None:
        plan = (tuple((type_, tuple(dims)) for type_, dims in jeux.items()) if isinstance(jeux, Mapping)
                else tuple((type_, tuple(jeux)) for type_ in periodes))
        self.etapes = tuple((type_, tuple(ds for dims in dims_list for ds in _noms(type_, dims, departement)))
                            for type_, dims_list in plan)
        # The values the plan reads, in a fixed order: with the day, they make the cache key.
        self.noms = tuple(sorted({d for _, dss in self.etapes for ds in dss for d in ds}))


# A group of contributions: (indicateur, plan, day or None, the values the plan reads, bucket),
# which names the same keys (2 to 44) whatever the dossier: see _cles.
Groupe = tuple[str, "Plan", date | None, tuple[str, ...], int | None]


def _noms(type_: str, dims: tuple[str, ...], departement: bool) -> tuple[tuple[str, ...], ...]:
    """The dimension sets a breakdown is filed under (itself, and crossed with the département)."""
    noms = [dims]
    if departement and (type_ in DEPARTEMENTALES or type_ == COURANT) and "departement" not in dims:
        noms.append((*dims, "departement"))
    return tuple(noms)


def _ajouter(out: dict[Groupe, int], indicateur: str, quand: datetime | None, valeurs: Mapping[str, str],
             plan: Plan, n: int = 1, bucket: int | None = None) -> None:
    g = (indicateur, plan, quand.date() if quand is not None else None, tuple([valeurs[k] for k in plan.noms]), bucket)
    out[g] = out.get(g, 0) + n


def cumuler(total: dict[Groupe, int], delta: Mapping[Groupe, int], signe: int = 1) -> None:
    """``delta`` added to ``total`` (subtracted with ``signe=-1``), in place."""
    for g, n in delta.items():
        total[g] = total.get(g, 0) + signe * n


def etendre(groupes: Mapping[Groupe, int]) -> Counter[Contribution]:
    """Groups as the keys they name, each with its group's count (keys shared by groups summed)."""
    out: Counter[Contribution] = Counter()
    for g, n in groupes.items():
        cles = _cles(*g)
        if out.keys().isdisjoint(cles):  # the usual case (keys name their indicator): one C-level update
            dict.update(out, zip(cles, repeat(n)))  # (Counter.update would count the pairs)
        else:
            for k in cles:
                out[k] = out.get(k, 0) + n  # not Counter's +=: its __missing__ is a Python call per key
    return out


# A signalement files itself under ~60 keys, the same for every signalement of the same day and
# profile: the names are built once per (indicateur, day, values, bucket) and cached. Measured on
# the bench's signalements: contributions of a dossier from ~100 to ~50 µs (issue 8).
@lru_cache(maxsize=1 << 15)
def _cles(indicateur: str, plan: Plan, jour: date | None, valeurs: tuple[str, ...],
          bucket: int | None) -> tuple[Contribution, ...]:
    v = dict(zip(plan.noms, valeurs, strict=True))
    return tuple((cle(indicateur, type_, periode(type_, jour) if jour is not None else COURANT,
                      {d: v[d] for d in ds}), bucket)
                 for type_, dss in plan.etapes for ds in dss)


# Each call site's plan, once.
P_SIGNALEMENTS = Plan(SIGNALEMENTS)
P_ESCALADES = Plan(PAR_FILE, (SEMAINE, MOIS, ANNEE))
P_COLLECTIF = Plan([()], departement=False)
P_BACKLOG = Plan([(), ("axe",), ("file",), ("assistant",)], (COURANT,))
P_ATTENTE = Plan([(), ("axe",), ("file",)], (COURANT,))
P_PAR_FILE = Plan(PAR_FILE)
P_PAR_AXE = Plan(PAR_AXE)
P_ACCOMPAGNES = Plan([(), ("axe",), ("axe", "sexe"), ("axe", "tranche_age"), ("axe", "risque"),
                      ("sexe",), ("tranche_age",), ("risque",)])
P_ENTRETIENS = Plan([(), ("mode",), ("axe",), ("axe", "mode")], (SEMAINE, MOIS, ANNEE))
P_PRECONISATIONS = Plan([(), ("axe",), ("preconisation",), ("axe", "preconisation")])
P_CLOTURES = Plan([(), ("axe",), ("issue",), ("axe", "issue")])
P_CLOTURES_3 = Plan([(), ("axe",), ("axe", "issue")])


def contributions(d: dict[str, Any]) -> Counter[Contribution]:
    """Every key the dossier counts in, with its count."""
    return etendre(groupes(d))


def groupes(d: dict[str, Any]) -> dict[Groupe, int]:
    """The same, as groups of keys."""
    out: dict[Groupe, int] = {}
    suivis = sorted(d["suivis"].values(), key=lambda s: s["t"])
    for s in suivis:
        if s["type"] == "action-collective":
            quand = _dt(s["t"])
            _ajouter(out, "actions-collectives", quand, {}, P_COLLECTIF)
            _ajouter(out, "seances-collectives", quand, {}, P_COLLECTIF, n=s.get("seances", 1))
            _ajouter(out, "participants-collectifs", quand, {}, P_COLLECTIF, n=s.get("participants", 0))
    sig, aff = d["sig"], d["aff"]
    if aff is None:
        return out  # nothing to file it under until routing has decided
    v = {"axe": aff["axe"], "file": aff["file"], "departement": aff["departement"], "source": aff["source"]}
    for esc in d["escalades"].values():
        ve = {"axe": esc["axe"], "file": esc["file"], "departement": esc["departement"]}
        _ajouter(out, "escalades", _dt(esc["le"]), ve, P_ESCALADES)
    if sig is not None:
        v.update(sexe=sig["sexe"], tranche_age=sig["tranche_age"], risque=sig["risque"])
        _ajouter(out, "signalements", _dt(sig["recu_le"]), v, P_SIGNALEMENTS)
    recu = _dt(aff["recu_le"])

    contacts = [s for s in suivis if s["type"] in ("prise-en-charge", "entretien")]
    fins = [s for s in suivis if s["type"] in FIN]
    premier = contacts[0] if contacts else None
    fin = fins[0] if fins else None
    assistant = next((s["assistant"] for s in reversed(suivis) if s.get("assistant")), None)
    v["assistant"] = assistant or aff["assistant"] or NON_ATTRIBUE

    if fin is None:  # still open: the backlog
        _ajouter(out, "backlog", None, v, P_BACKLOG)
        if premier is None:
            _ajouter(out, "en-attente-premier-contact", None, v, P_ATTENTE)
    if premier is not None:
        t = _dt(premier["t"])
        jours = max(0, (t - recu).days)
        _ajouter(out, "delai-premier-contact", t, v, P_PAR_FILE, bucket=jours)
        _ajouter(out, "premiers-contacts", t, v, P_PAR_FILE)
        if t.date().isoformat() > aff["echeance"]:
            _ajouter(out, "premiers-contacts-hors-delai", t, v, P_PAR_FILE)
        if sig is not None:
            _ajouter(out, "assures-accompagnes", t, v, P_ACCOMPAGNES)
    for s in suivis:
        t = _dt(s["t"])
        if s["type"] == "entretien":
            ve = {**v, "mode": s.get("mode", "inconnu")}
            _ajouter(out, "entretiens", t, ve, P_ENTRETIENS)
        elif s["type"] == "preconisation":
            vp = {**v, "preconisation": s.get("preco", "autre")}
            _ajouter(out, "preconisations", t, vp, P_PRECONISATIONS)
        elif s["type"] == "reorientation":
            _ajouter(out, "reorientations", t, v, P_PAR_AXE)
    if fin is not None:
        t = _dt(fin["t"])
        issue = fin.get("issue", "autre") if fin["type"] == "cloture" else fin["type"]
        vc = {**v, "issue": issue}
        _ajouter(out, "clotures", t, vc, P_CLOTURES)
        debut = _dt(premier["t"]) if premier is not None and premier["t"] <= fin["t"] else recu
        _ajouter(out, "duree-accompagnement", t, vc, P_PAR_AXE, bucket=max(0, (t - debut).days))
        nb = sum(1 for s in suivis if s["type"] == "entretien")
        if fin["type"] == "cloture" and nb >= 3:
            _ajouter(out, "clotures-3-entretiens", t, vc, P_CLOTURES_3)
    return out


def difference(avant: dict[str, Any] | None, apres: dict[str, Any]) -> Counter[Contribution]:
    """What applying one event changed, as signed counts (negative: a figure went down)."""
    return Counter({k: n for k, n in etendre(difference_groupes(avant, apres)).items() if n})


def difference_groupes(avant: dict[str, Any] | None, apres: dict[str, Any]) -> dict[Groupe, int]:
    """The same, as groups: those the event left unchanged cancel out before any key is named."""
    delta = groupes(apres)
    if avant is None:
        return delta
    cumuler(delta, groupes(avant), -1)
    return {g: n for g, n in delta.items() if n}


class Accumulateur:
    """The same arithmetic without a broker: dossiers in a dict, totals in a Counter.

    What the Faust agent does per partition, for the pure tests and the simulator's
    offline year (``aiguillage demo --hors-ligne``).
    """

    def __init__(self) -> None:
        self.dossiers: dict[str, dict[str, Any]] = {}
        self.totaux: Counter[Contribution] = Counter()

    def appliquer(self, nature: str, cle_: str, record: Mapping[str, Any]) -> None:
        avant = self.dossiers.get(cle_)
        fn = {"signalement": appliquer_signalement, "affectation": appliquer_affectation,
              "suivi": appliquer_suivi}[nature]
        apres = fn(avant, record)
        self.totaux.update(difference(avant, apres))
        self.dossiers[cle_] = apres

    def recompter(self) -> Counter[Contribution]:
        total: Counter[Contribution] = Counter()
        for d in self.dossiers.values():
            total.update(contributions(d))
        return total
