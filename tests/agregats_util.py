"""Helpers of the aggregate tests: feed the simulator's year to the arithmetic, recount topics."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiguillage import topics
from aiguillage.agregats import publication
from aiguillage.agregats.calcul import Accumulateur
from aiguillage.codec import AvroCodec, CodecError
from aiguillage.demo.simulateur import Evenement, affectation_simulee
from aiguillage.domain import Affectation, Source, Suivi
from aiguillage.routing import cycle
from aiguillage.routing.rechargement import ConfigCourante
from tests.kafka_util import read_topic


def cle_suivi(record: dict[str, Any]) -> str:
    return record["signalement_id"] or f"action:{record['suivi_id']}"


def accumuler_simulation(evenements: Iterable[Evenement]) -> Accumulateur:
    """The simulator's events through the arithmetic, routing stood in for by affectation_simulee."""
    acc = Accumulateur()
    for ev in evenements:
        if ev.nature == "signalement":
            sid = ev.record["signalement_id"]
            acc.appliquer("signalement", sid, ev.record)
            acc.appliquer("affectation", sid, affectation_simulee(ev.record))
        else:
            acc.appliquer("suivi", cle_suivi(ev.record), ev.record)
    return acc


def acceptes(affectations: list[dict[str, Any]], suivis: list[dict[str, Any]]) -> set[str]:
    """The suivi ids the life cycle accepts, by the same rule the worker applies
    (:mod:`aiguillage.routing.cycle`): only those count in the figures. Each signalement's
    suivis in their topic's order, after its first Affectation (one kept before it is applied then)."""
    moteur = ConfigCourante(None).moteur
    entrees: dict[str, dict[str, Any] | None] = {}
    out: set[str] = set()
    maintenant = datetime.now(UTC)
    for a in affectations:
        sid = a["signalement_id"]
        issue = cycle.sur_affectation(entrees.get(sid), Affectation.model_validate(a), moteur.equipes, moteur.version,
                                      maintenant)
        entrees[sid] = issue.entree or entrees.get(sid)
        out |= {s.suivi_id for s in issue.acceptes}
    for data in suivis:
        s = Suivi.model_validate(data)
        if cycle.problemes_suivi(s):
            continue
        if s.signalement_id is None:
            out.add(s.suivi_id)
            continue
        issue = cycle.sur_suivi(entrees.get(s.signalement_id), s, moteur.equipes, moteur.version, maintenant)
        entrees[s.signalement_id] = issue.entree or entrees.get(s.signalement_id)
        out |= {x.suivi_id for x in issue.acceptes}
    return out


def recompter(bootstrap: str, seuil: int = publication.SEUIL_PAR_DEFAUT) -> tuple[dict[str, tuple[float | None, bool]], set[str]]:
    """Every figure recounted from the raw topics, as it should be published: cle -> (valeur, masque);
    and how many demo signalements routing has not decided yet (their figures are not due yet).
    A suivi counts only if the life cycle accepted it (:func:`acceptes`)."""
    codec = AvroCodec()
    acc = Accumulateur()
    lots = [(topics.entrants(s), "Signalement", "signalement") for s in Source]
    lots += [(topics.AFFECTATIONS, "Affectation", "affectation"), (topics.SUIVIS, "Suivi", "suivi")]
    lus: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for topic, schema, nature in lots:
        for rec in sorted(read_topic(bootstrap, topic), key=lambda r: (r.partition, r.offset)):
            try:
                data = codec.decode(schema, rec.value)
            except CodecError:
                continue  # the routing agent dead-letters these; they count nowhere
            cle = data["signalement_id"] if nature == "signalement" else rec.key.decode()
            lus.setdefault(nature, []).append((cle, data))
    bons = acceptes([d for _, d in lus.get("affectation", [])], [d for _, d in lus.get("suivi", [])])
    for nature in ("signalement", "affectation", "suivi"):
        for cle, data in lus.get(nature, []):
            if nature != "suivi" or data["suivi_id"] in bons:
                acc.appliquer(nature, cle, data)
            if nature == "signalement" and data["source_ref"].startswith("DEMO-"):
                acc.dossiers[cle]["sig"]["demo"] = True
    rows = publication.tout_publier(acc.recompter(), seuil, datetime.now(UTC))
    en_attente = {sid for sid, d in acc.dossiers.items()
                  if d["sig"] is not None and d["aff"] is None and d["sig"].get("demo")}
    return {r["cle"]: (r["valeur"], r["masque"]) for r in rows}, en_attente


PUBLIES_PAR_LE_ROUTAGE = {"charge-assistant", "escalades-premier-contact"}


def publies(bootstrap: str) -> dict[str, tuple[float | None, bool]]:
    """The latest value of each figure on the compacted ``agregats`` topic."""
    codec = AvroCodec()
    out: dict[str, tuple[float | None, bool]] = {}
    for rec in sorted(read_topic(bootstrap, topics.AGREGATS), key=lambda r: (r.partition, r.offset)):
        try:
            a = codec.decode("Agregat", rec.value)
        except CodecError:
            continue  # written by another test's hub with a schema registry's ids
        if a["indicateur"] in PUBLIES_PAR_LE_ROUTAGE:
            continue  # the team agents' own figures: recounted by tests/test_routing_broker.py
        out[a["cle"]] = (a["valeur"], a["masque"])
    return out


def ecarts(attendu: dict[str, tuple[float | None, bool]], vu: dict[str, tuple[float | None, bool]]) -> list[str]:
    """Figures that differ; a figure absent on one side equals zero (a backlog that emptied)."""
    zero = (0.0, False)
    out = []
    for c in sorted(set(attendu) | set(vu)):
        a, v = attendu.get(c, zero), vu.get(c, zero)
        if a != v and not (a[0] is None and v[0] is None and not a[1] and not v[1]):
            out.append(f"{c}: recount {a} published {v}")
    return out


def rejets(bootstrap: str) -> dict[tuple[str, str], int]:
    """What the DLQ holds, by (stage, code): to tell a routing loss from a rejection."""
    from collections import Counter

    codec = AvroCodec()
    out: Counter[tuple[str, str]] = Counter()
    for rec in read_topic(bootstrap, topics.REJETES):
        try:
            dl = codec.decode("DeadLetter", rec.value)
        except CodecError:
            continue
        out[(dl["stage"], dl["error_code"])] += 1
    return dict(out)
