"""The life-cycle agent: decodes, calls :mod:`aiguillage.routing.cycle`'s decisions, sends what they say.

Consumes the Affectations (``<app>-affectations``, in packets: :mod:`streams.affectation_packets`),
``suivis`` and ``<app>-signalements`` (deadline checks), all keyed by signalement_id with the same
partition count, so one signalement's decisions and suivis meet on one partition
(:mod:`streams.state`). A suivi the life cycle refuses (an impossible transition, an unknown
team) is dead-lettered with the reason and changes nothing; the figures' first stage
(:mod:`streams.figures`), which shares this agent's pass, counts only the suivis it accepted.
The batch's ``cycles`` entries are written once at its end (:class:`streams.batches.Tampon`),
and it is acknowledged once every output is.

A timer looks for signalements past their first-contact date and not taken in charge; the check
itself runs in the stream (tables are only written there), one escalation per breach.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import faust
from pydantic import ValidationError

from aiguillage import metrics, topics
from aiguillage.codec import AvroCodec, CodecError
from aiguillage.dlq import Rejet
from aiguillage.domain import Affectation, Source, Suivi
from aiguillage.routing import accueil, cycle, messages
from aiguillage.routing.accueil import Assure
from aiguillage.routing.rechargement import ConfigCourante
from streams import affectation_packets, batches
from streams.affectation_packets import SortieAffectations
from streams.dead_letters import DeadLetters
from streams.deadlines import Echeances, EcheancesEnMemoire
from streams.topology import Topology

log = logging.getLogger(__name__)
STAGE = "cycle"


class Observateur(Protocol):
    """Another stage reading this agent's records in its pass (the figures' first stage)."""

    def debut_lot(self) -> None: ...

    def appliquer(self, msg: Any, record: dict[str, Any], etats: batches.Tampon) -> None: ...

    def archiver(self, msg: Any, sid: str, entree: dict[str, Any], etats: batches.Tampon) -> None: ...

    def fin_lot(self) -> None: ...


class Cycle:
    def __init__(self, topo: Topology, codec: AvroCodec, config: ConfigCourante, rejets: DeadLetters,
                 echeances: Echeances | None = None, purges: Echeances | None = None,
                 grace: timedelta = cycle.PURGE_APRES) -> None:
        self.topo, self.codec, self.config, self.rejets = topo, codec, config, rejets
        self.nom_affectations = topo.affectations_cycle.get_topic_name()
        # The schema of each topic's records; else a deadline check (JSON).
        self.schemas = {self.nom_affectations: "Affectation", topics.SUIVIS: "Suivi"}
        self.envois = rejets.envois()
        self.sortie = SortieAffectations(topo, codec, self.envois)
        # Deadline checks asked and not yet seen done, so that a tick does not ask twice; kept to
        # what is due now (pruned at each tick).
        self.demandes: set[tuple[str, str, str]] = set()
        self.echeances = echeances if echeances is not None else EcheancesEnMemoire()
        self.purges = purges if purges is not None else EcheancesEnMemoire()  # closed entries, by the day they go
        self.grace = grace
        self.purgees = self.purgees_dites = 0  # entries purged since start, and as last logged by the timer
        self._echeances_a_jour = False
        self.etats = batches.Tampon(topo.cycles, apres=self._indexer)

    def _indexer(self, sid: str, c: dict[str, Any] | None) -> None:
        self.echeances.mettre(sid, cycle.echeance_a_surveiller(c))
        self.purges.mettre(sid, cycle.a_purger(c, self.grace))

    async def traiter_lot(self, events: list[faust.types.EventT], aussi: Observateur | None = None) -> None:
        """Raises only :class:`streams.batches.EnvoiImpossible`."""
        self.etats.oublier()
        lot = [(event, self.depaqueter(event.message)) for event in events]
        await self.codec.connaitre(m.value for _, ms in lot if isinstance(ms, list) for m in ms
                                   if m.topic in self.schemas)
        if aussi is not None:
            aussi.debut_lot()
        for event, ms in lot:
            batches.pour(event)
            if isinstance(ms, Rejet):
                await self.rejets.envoyer(self.envois, event.message, ms, STAGE)
                continue
            for msg in ms:
                await self.traiter(msg, aussi)
        self.etats.ecrire()
        if aussi is not None:
            aussi.fin_lot()
        await self.rejets.apres_echecs(self.envois, await self.sortie.confirmer(), STAGE)

    def depaqueter(self, msg: Any) -> list[Any] | Rejet:
        """A record's messages: each Affectation of a packet as a record of its own, else the record."""
        if msg.topic != self.nom_affectations:
            return [msg]
        try:
            return [_Lu(msg.topic, msg.partition, msg.offset, cle, valeur)
                    for cle, valeur in affectation_packets.decoder(msg.key, msg.value)]
        except ValueError as exc:
            return Rejet("paquet-invalide", str(exc))

    async def traiter(self, msg: Any, aussi: Observateur | None) -> None:
        schema = self.schemas.get(msg.topic)
        try:
            record = self.codec.decode(schema, msg.value) if schema else json.loads(msg.value)
            issue = self.decider(msg.topic, record)
        except (CodecError, ValueError, ValidationError) as exc:
            code = exc.code if isinstance(exc, CodecError) else "champ-invalide"
            await self.rejets.envoyer(self.envois, msg, Rejet(code, f"{msg.topic}: {exc}"[:500]), STAGE)
            return
        except Exception as exc:
            log.exception("life-cycle agent failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
            await self.rejets.envoyer(self.envois, msg, Rejet("erreur-interne", type(exc).__name__), STAGE)
            return
        if isinstance(issue, Rejet):
            await self.rejets.envoyer(self.envois, msg, issue, STAGE)
            return
        if "oublier" in record:  # an assuré's dedup entry past the horizon (routing's table)
            if accueil.expire(Assure.lire(self.topo.assures.get(record["oublier"])), datetime.now(UTC)):
                self.topo.assures.pop(record["oublier"], None)
            return
        if issue.purger:  # a closed signalement, past its grace: its figures archived, its entry gone
            self.purgees += 1
            if aussi is not None:
                aussi.archiver(msg, record["sid"], self.etats.get(record["sid"]) or {}, self.etats)
            self.etats.oter(record["sid"])
            return
        if issue.entree is not None:
            self.etats[record.get("signalement_id") or record["sid"]] = issue.entree
        if "echeance" in record and issue.sorties:
            metrics.ECHEANCES.inc()
        for sortie in issue.sorties:
            await self.envoyer(sortie, msg)
        if issue.rejet is not None:
            await self.rejets.envoyer(self.envois, msg, issue.rejet, STAGE)
        if aussi is not None and schema:
            self.compter(aussi, msg, record, issue)

    def decider(self, topic: str, record: dict[str, Any]) -> cycle.Issue | Rejet:
        maintenant, m = datetime.now(UTC), self.config.moteur
        if topic == self.nom_affectations:
            aff = Affectation.model_validate(record)
            return cycle.sur_affectation(self.etats.get(aff.signalement_id), aff, m.equipes, m.version, maintenant)
        if topic == topics.SUIVIS:
            suivi = Suivi.model_validate(record)
            problemes = cycle.problemes_suivi(suivi)
            if problemes:
                return Rejet("suivi-invalide", "invalid suivi: " + ", ".join(p["field"] for p in problemes),
                             tuple(problemes))
            if suivi.signalement_id is None:  # an action collective concerns no signalement
                return cycle.Issue(acceptes=[suivi])
            return cycle.sur_suivi(self.etats.get(suivi.signalement_id), suivi, m.equipes, m.version, maintenant)
        if "oublier" in record:
            return cycle.Issue()
        if "purger" in record:
            return cycle.sur_purge(self.etats.get(record["sid"]), record["purger"], maintenant.date(), self.grace)
        return cycle.sur_echeance(self.etats.get(record["sid"]), record["echeance"], m, maintenant)

    def compter(self, aussi: Observateur, msg: Any, record: dict[str, Any], issue: cycle.Issue) -> None:
        """The figures see every Affectation and each suivi the life cycle accepted, no other."""
        try:
            if msg.topic == self.nom_affectations:
                aussi.appliquer(msg, record, self.etats)
                for s in issue.acceptes:  # suivis kept until this first decision, accepted now
                    aussi.appliquer(_comme_suivi(msg), s.to_avro(), self.etats)
            elif issue.acceptes:
                aussi.appliquer(msg, record, self.etats)
        except Exception:  # the figures are rebuilt from the dossiers after a restart: logged, not lost
            log.exception("aggregates failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)

    async def envoyer(self, sortie: cycle.SortieCycle, msg: Any) -> None:
        if isinstance(sortie, cycle.PublierRetour):
            await self.envois.envoyer(self.topo.retours[Source(sortie.source)], self.codec.encode("Retour", sortie.retour),
                                      key=sortie.retour["signalement_id"].encode(), origine=msg)
        elif isinstance(sortie, cycle.DireEquipe):
            await self.envois.envoyer(self.topo.equipes, messages.encoder(sortie.message), key=sortie.equipe.encode(),
                                      origine=msg)
        else:  # it comes back to this agent through its packet, as any Affectation
            await self.sortie.envoyer(sortie.aff, msg)

    # -- the deadlines' timer ---------------------------------------------------------------

    def oublier_echeances(self, *_: Any, **__: Any) -> None:
        self._echeances_a_jour = False

    async def reindexer(self, pas: int = 50) -> None:
        """After a rebalance: the deadlines' and purges' indexes from the table, a slice at a time
        (one pass over 400,000 entries froze the worker for seconds). An entry the agent writes
        meanwhile is indexed by its write (``_indexer``); indexing its stored value again in a later
        slice is harmless, the agent's next write of it indexing it anew."""
        self._echeances_a_jour = True  # set back to False by a rebalance during the pass
        self.echeances.effacer()
        self.purges.effacer()
        for i, sid in enumerate(list(self.topo.cycles.keys())):
            if not self._echeances_a_jour:
                return
            c = self.topo.cycles.get(sid)
            if c is not None:
                self._indexer(sid, c)
            if i % pas == pas - 1:
                await asyncio.sleep(0)

    async def verifier_echeances(self) -> int:
        """Ask, once per breach, for a deadline check of each late signalement (sent to its own
        partition of ``<app>-signalements``, where the stream makes it)."""
        if not self._echeances_a_jour:
            await self.reindexer()
            if not self._echeances_a_jour:
                return 0  # a rebalance during the pass: the next tick indexes again
        aujourd_hui = datetime.now(UTC).date().isoformat()
        dues = [("echeance", sid, jour) for sid, jour in self.echeances.dues(aujourd_hui)]
        # Closed entries past their grace (due "before tomorrow": today's included).
        demain = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
        dues += [("purger", sid, jour) for sid, jour in self.purges.dues(demain)]
        self.demandes &= set(dues)  # what is no longer due was handled: forget it
        n = 0
        for quoi, sid, jour in dues:
            if (quoi, sid, jour) not in self.demandes:
                self.demandes.add((quoi, sid, jour))
                await self.topo.signalements.send(key=sid.encode(), value=json.dumps({"sid": sid, quoi: jour}).encode())
                n += 1
        return n

    async def oublier_assures(self, pas: int = 500) -> int:
        """The dedup entries past the horizon, forgotten by the stream (one request each, to the
        entry's own partition); read in slices, yielding between them."""
        maintenant, n = datetime.now(UTC), 0
        cles = list(self.topo.assures.keys())
        for i, nir in enumerate(cles):
            if accueil.expire(Assure.lire(self.topo.assures.get(nir)), maintenant):
                await self.topo.signalements.send(key=nir.encode(), value=json.dumps({"oublier": nir}).encode())
                n += 1
            if i % pas == pas - 1:
                await asyncio.sleep(0)
        return n


def _comme_suivi(msg: Any) -> Any:
    """The Affectation's message, seen as the suivis topic's: the figures read the topic's name."""
    return _Lu(topics.SUIVIS, msg.partition, msg.offset, msg.key, msg.value)


class _Lu:
    """A message the agent handles that is not a Faust record by itself: one Affectation of a
    packet (the packet's topic, partition and offset, keyed by its signalement_id: what a dead
    letter of it names, and what its replay sends), or an Affectation seen as a suivi."""

    __slots__ = ("headers", "key", "offset", "partition", "topic", "value")

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset
        self.key, self.value, self.headers = key, value, None


def install(topo: Topology, c: Cycle, intervalle: float = 60.0, aussi: Observateur | None = None,
            entretien: float = 3600.0) -> None:
    app = topo.app
    app.on_partitions_assigned.connect(c.oublier_echeances)
    canal = app.topic(c.nom_affectations, topics.SUIVIS, topo.signalements.get_topic_name(), internal=True,
                      partitions=app.conf.topic_partitions, key_serializer="raw", value_serializer="raw")

    @app.agent(canal, name="cycle", concurrency=1)
    async def cycle_agent(stream: faust.StreamT) -> None:
        async for events in batches.par_lots_de_paquets(stream):
            await batches.sans_perte(c.traiter_lot(events, aussi))

    # The scan reads the deadlines' index: often enough for deadlines counted in days, not every
    # few seconds.
    @app.timer(interval=intervalle, name="echeances-premier-contact")
    async def echeances() -> None:
        await c.verifier_echeances()
        if c.purgees != c.purgees_dites:
            c.purgees_dites = c.purgees
            log.info("closed signalements purged so far: %d (their figures archived)", c.purgees)

    @app.timer(interval=entretien, name="dedup-horizon")
    async def horizon() -> None:
        await c.oublier_assures()
