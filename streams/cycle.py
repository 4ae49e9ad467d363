"""The life-cycle agent: FHIR status per signalement, retours to partners, first-contact deadlines.

Consumes ``affectations``, ``suivis`` and ``<app>-signalements``, all keyed by
signalement_id with the same partition count, so one signalement's decisions and
suivis meet on one partition (see :mod:`streams.etat`). For each suivi:

- checked (cross-field rules, known team on réorientation) and applied to the
  state machine (:mod:`aiguillage.routing.cycle`); an impossible one goes to
  ``signalements.rejetes`` with the reason, nothing else changes;
- each change of status is published on ``retours.<source>`` (never the comment);
- the caseload effect goes to the signalement's team partition (liberer, reorienter).

Records come in batches (:mod:`streams.lots`), each decoded once and also handed to the
figures' first stage (:meth:`streams.agregats.Agregation.appliquer`), which reads the
same two topics: one pass over them instead of two. That stage keeps its dossier in the
same ``cycles`` entry, and the batch's entries are written once at its end
(:class:`streams.lots.Tampon`): one changelog record per signalement and batch.

A suivi that arrives before its signalement's first Affectation is kept and replayed
when the Affectation arrives. A timer looks for signalements past their first-contact
date and not taken in charge; the check itself runs in the stream (tables are only
written there) and asks the team for one escalation per breach.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

import faust
from pydantic import ValidationError

from aiguillage import topics
from aiguillage.codec import AvroCodec, CodecError
from aiguillage.dlq import Rejet
from aiguillage.domain import Affectation, Source, Suivi, TypeSuivi
from aiguillage.routing import cycle
from aiguillage.routing.cycle import Statut
from aiguillage.routing.rechargement import ConfigCourante
from connectors.base import rejet_de_validation
from streams import lots
from streams.echeances import (
    EN_ATTENTE_DE_CONTACT,
    Echeances,
    EcheancesEnMemoire,
    echeance_a_surveiller,
)
from streams.equipes import escalade, reorientation
from streams.routage import Routeur, demande
from streams.topology import Topology

log = logging.getLogger(__name__)


class Observateur(Protocol):
    """Another stage reading this agent's records in its pass (the figures' first stage)."""

    def debut_lot(self) -> None:
        """Before a batch's first record (nothing of the batch is applied yet)."""

    def appliquer(self, msg: Any, record: dict[str, Any], etats: lots.Tampon) -> None:
        """One decoded record, with the batch's ``cycles`` writes."""

SUIVIS_GARDES = 50  # suivi ids remembered per signalement, for resends


# What the life cycle keeps of an Affectation that a team holds (the team keeps the rest): the
# retours' fields, the sequence, the team and the first-contact date. A team-less one is kept
# whole: this agent then numbers its decisions (escalade, réorientation). Measured with
# `aiguillage bench` (30,000 signalements, all left open): peak RSS 378-393 MB -> 317 MB.
GARDE = ("signalement_id", "source", "source_ref", "sequence", "equipe", "echeance_premier_contact")


def ce_qui_reste(aff: Affectation) -> dict[str, Any]:
    d = aff.model_dump(mode="json")
    return d if aff.equipe is None else {k: d[k] for k in GARDE}


class Cycle:
    def __init__(self, topo: Topology, codec: AvroCodec, config: ConfigCourante, routeur: Routeur,
                 echeances: Echeances | None = None) -> None:
        self.topo = topo
        self.codec = codec
        self.config = config
        self.routeur = routeur  # for its dead-letter helper
        self.demandes_echeance: set[tuple[str, str]] = set()  # (sid, due date) asked since start
        self.schemas = {topics.AFFECTATIONS: "Affectation", topics.SUIVIS: "Suivi"}  # else: a deadline check (JSON)
        # The batch's writes to ``cycles``, shared with the figures' first stage (its dossier is
        # the entry's "ag"): one changelog record per signalement and batch for both.
        # The deadlines to watch follow the table, entry by entry (rebuilt after a rebalance).
        self.echeances = echeances if echeances is not None else EcheancesEnMemoire()
        self._echeances_a_jour = False
        self.etats = lots.Tampon(topo.cycles, apres=lambda sid, c: self.echeances.mettre(sid, echeance_a_surveiller(c)))

    async def traiter_lot(self, events: list[faust.types.EventT], aussi: Observateur | None = None) -> None:
        """A batch: each record decoded once, then the life cycle, then ``aussi`` (the aggregates'
        first stage, which reads the same topics: one pass instead of two). Never raises."""
        self.etats.oublier()
        if aussi is not None:
            try:
                aussi.debut_lot()
            except Exception:
                log.exception("aggregates could not prepare this batch")
        for event in events:
            lots.pour(event)
            msg = event.message
            schema = self.schemas.get(msg.topic)
            try:
                record = self.codec.decode(schema, msg.value) if schema else json.loads(msg.value)
            except (CodecError, ValueError) as exc:
                code = exc.code if isinstance(exc, CodecError) else "json-invalide"
                await self.rejeter(msg, Rejet(code, f"{msg.topic}: {exc}"))
                continue
            try:
                await self.traiter(msg, record)
            except Exception as exc:
                log.exception("life-cycle agent failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
                await self.rejeter(msg, Rejet("erreur-interne", f"suivi processing failed: {type(exc).__name__}"))
            if schema and aussi is not None:
                try:
                    aussi.appliquer(msg, record, self.etats)
                except Exception:
                    log.exception("aggregates failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
        self.etats.ecrire()

    async def rejeter(self, msg: Any, rejet: Rejet) -> None:
        """Dead-letter without raising: a raise would ack the rest of the batch unprocessed."""
        try:
            await self.routeur.rejeter(msg, rejet)
        except Exception:
            log.exception("could not dead-letter %s[%d]@%d", msg.topic, msg.partition, msg.offset)

    async def traiter(self, msg: Any, record: dict[str, Any]) -> None:
        if msg.topic == topics.AFFECTATIONS:
            await self.sur_affectation(record)
        elif msg.topic == topics.SUIVIS:
            suivi = self.valider_suivi(record)
            if isinstance(suivi, Rejet):
                await self.routeur.rejeter(msg, suivi)
            elif suivi.signalement_id is not None:  # an action collective concerns no signalement
                rejet = await self.sur_suivi(suivi)
                if rejet is not None:
                    await self.routeur.rejeter(msg, rejet)
        else:
            await self.sur_echeance(record)

    @staticmethod
    def valider_suivi(data: dict[str, Any]) -> Suivi | Rejet:
        try:
            suivi = Suivi.model_validate(data)
        except ValidationError as exc:
            return rejet_de_validation(exc)
        problemes = cycle.problemes_suivi(suivi)
        if problemes:
            return Rejet("suivi-invalide", "invalid suivi: " + ", ".join(p["field"] for p in problemes), tuple(problemes))
        return suivi

    async def sur_affectation(self, data: dict[str, Any]) -> None:
        aff = Affectation.model_validate(data)
        sid = aff.signalement_id
        c = self.etats.get(sid)
        if c and c.get("aff") and c["aff"]["sequence"] >= aff.sequence:
            return  # an older or repeated decision
        nouveau = not c or c.get("statut") is None
        c = {"suivis": [], **(c or {})}
        en_attente = c.pop("en_attente", [])
        c["aff"] = ce_qui_reste(aff)
        if nouveau:
            c["statut"] = Statut.REQUESTED.value
            await self.publier_retour(c["aff"], Statut.REQUESTED, None, f"aff{aff.sequence}", aff.decide_le)
        self.etats[sid] = c
        for s in en_attente:  # suivis that came before this signalement's first decision
            rejet = await self.sur_suivi(Suivi.model_validate(s))
            if rejet is not None:
                log.warning("a suivi kept for %s is refused: %s", sid, rejet.reason)

    async def sur_suivi(self, suivi: Suivi) -> Rejet | None:
        sid = suivi.signalement_id
        assert sid is not None
        c = self.etats.get(sid)
        if not c or c.get("statut") is None:
            c = {"suivis": [], **(c or {})}
            kept = suivi.model_dump(mode="json", exclude={"commentaire"})  # free text stays out of changelogs
            c["en_attente"] = [*c.get("en_attente", []), kept][-SUIVIS_GARDES:]
            self.etats[sid] = c
            return None
        if suivi.suivi_id in c["suivis"]:
            return None  # a resend
        avant = Statut(c["statut"])
        try:
            apres = cycle.transition(avant, suivi)
        except cycle.TransitionImpossible as exc:
            return Rejet("transition-impossible", str(exc), ({"field": "type", "problem": str(exc)},))
        vers = suivi.reorientation_vers or ""
        if vers.startswith("equipe:") and vers[7:] not in self.config.moteur.equipes:
            return Rejet("equipe-inconnue", "reorientation_vers: no such team in the routing configuration",
                         ({"field": "reorientation_vers", "problem": "expected equipe:<id> of a configured team"},))
        aff = c["aff"]
        c = {**c, "statut": apres.value, "suivis": [*c["suivis"], suivi.suivi_id][-SUIVIS_GARDES:]}
        self.etats[sid] = c
        if apres != avant or suivi.type is TypeSuivi.REORIENTATION:
            await self.publier_retour(aff, apres, avant, suivi.suivi_id, suivi.survenu_le, cycle.issue_de(suivi))
        equipe = aff.get("equipe")
        if apres in cycle.TERMINAUX:
            if equipe:
                await self.vers_equipe(equipe, "liberer", sid=sid)
        elif suivi.type is TypeSuivi.REORIENTATION:
            if equipe:
                await self.vers_equipe(equipe, "reorienter", sid=sid, vers=vers, suivi_id=suivi.suivi_id,
                                       quand=suivi.survenu_le.isoformat(), assistant=suivi.assistant)
            else:  # no team held it: this agent numbers its decisions
                nouvelle = reorientation(Affectation.model_validate(aff), vers, suivi.survenu_le.isoformat(),
                                         self.config.moteur.version, suivi.assistant)
                if nouvelle.equipe is None:
                    return None
                await self.vers_equipe(nouvelle.equipe, "nouveau", aff=nouvelle.model_dump(mode="json"), placer=True,
                                       territoire=nouvelle.equipe, reorientation=suivi.suivi_id)
        return None

    async def sur_echeance(self, m: dict[str, Any]) -> None:
        c = self.etats.get(m["sid"])
        if not c or c.get("statut") not in EN_ATTENTE_DE_CONTACT:
            return
        aff = c["aff"]
        if aff["echeance_premier_contact"] != m["echeance"] or c.get("escalade_pour") == m["echeance"]:
            return  # the deadline moved (already escalated), or this breach was handled
        self.etats[m["sid"]] = {**c, "escalade_pour": m["echeance"]}
        if aff.get("equipe"):
            await self.vers_equipe(aff["equipe"], "escalade", sid=m["sid"], echeance=m["echeance"])
        else:
            final = escalade(Affectation.model_validate(aff), self.config.moteur)
            await self.topo.affectations.send(key=final.cle(), value=self.codec.encode("Affectation", final.to_avro()))

    def oublier_echeances(self, *_: Any, **__: Any) -> None:
        self._echeances_a_jour = False

    async def verifier_echeances(self) -> int:
        """Timer body: ask, once per breach, for a deadline check of each late signalement."""
        if not self._echeances_a_jour:
            # After a rebalance: one pass over the table, without awaiting (nothing writes it meanwhile).
            self.echeances.effacer()
            for sid, c in self.topo.cycles.items():
                self.echeances.mettre(sid, echeance_a_surveiller(c))
            self._echeances_a_jour = True
        today = datetime.now(UTC).date().isoformat()
        n = 0
        for sid, echeance in self.echeances.dues(today):
            if (sid, echeance) not in self.demandes_echeance:
                self.demandes_echeance.add((sid, echeance))
                await self.topo.signalements.send(key=sid.encode(), value=json.dumps({"sid": sid, "echeance": echeance}).encode())
                n += 1
        return n

    async def publier_retour(self, aff: dict[str, Any], statut: Statut, avant: Statut | None, cause: str,
                             quand: datetime, issue: str | None = None) -> None:
        r = cycle.retour(aff, statut, avant, cause, quand, issue)
        await self.topo.retours[Source(aff["source"])].send(key=aff["signalement_id"].encode(), value=self.codec.encode("Retour", r))

    async def vers_equipe(self, equipe: str, kind: str, **fields: Any) -> None:
        await self.topo.equipes.send(key=equipe.encode(), value=demande(kind, **fields))


def install(topo: Topology, c: Cycle, intervalle: float = 60.0, aussi: Observateur | None = None) -> None:
    app = topo.app
    app.on_partitions_assigned.connect(c.oublier_echeances)
    canal = app.topic(topics.AFFECTATIONS, topics.SUIVIS, topo.signalements.get_topic_name(), internal=True,
                      partitions=app.conf.topic_partitions, key_serializer="raw", value_serializer="raw")

    @app.agent(canal, name="cycle", concurrency=1)
    async def cycle_agent(stream: faust.StreamT) -> None:
        async for events in lots.par_lots(stream):
            await c.traiter_lot(events, aussi)

    # The scan reads every open signalement: often enough for deadlines counted in days, not
    # every few seconds (at 2 s it took 9 % of the worker's CPU with 40,000 signalements).
    @app.timer(interval=intervalle, name="echeances-premier-contact")
    async def echeances() -> None:
        await c.verifier_echeances()
