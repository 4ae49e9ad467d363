"""The ingress agent: decode, validate, then :func:`aiguillage.routing.accueil.accueillir`, then send.

A signalement goes to its team's partition (``<app>-equipes``, in packets: one record per
partition and batch) or, without a team, straight to ``affectations``. What cannot be decoded or
validated is dead-lettered; what was routed is marked seen (``assures``) only once the batch's
sends are acknowledged: a crash in between routes it again, never loses it.
``concurrency=1``: output must not be lost (faust-streaming #606).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import faust
from pydantic import ValidationError

from aiguillage import logs, metrics, tracing
from aiguillage.codec import AvroCodec, CodecError
from aiguillage.dlq import Rejet
from aiguillage.domain import Signalement
from aiguillage.routing import accueil, messages
from aiguillage.routing.accueil import Assure, SansEquipe
from aiguillage.routing.rechargement import ConfigCourante
from connectors.base import rejet_de_validation, verifier_provenance
from streams import batches
from streams.affectation_packets import SortieAffectations
from streams.dead_letters import DeadLetters
from streams.topology import Topology

log = logging.getLogger(__name__)
STAGE = "stream"


class Routeur:
    def __init__(self, topo: Topology, codec: AvroCodec, rejets: DeadLetters, config: ConfigCourante) -> None:
        self.topo, self.codec, self.rejets, self.config = topo, codec, rejets, config
        self.envois = rejets.envois()
        self.sortie = SortieAffectations(topo, codec, self.envois)

    def decoder(self, msg: Any) -> Signalement | Rejet:
        try:
            s = Signalement.model_validate(self.codec.decode("Signalement", msg.value))
        except CodecError as exc:
            return Rejet(exc.code, str(exc))
        except ValidationError as exc:
            return rejet_de_validation(exc)
        return verifier_provenance(s, msg.topic) or s  # direct producers: only their own source and ids

    async def traiter_lot(self, events: list[faust.types.EventT]) -> None:
        """Route a batch. Raises only :class:`streams.batches.EnvoiImpossible`."""
        maintenant = datetime.now(UTC)
        await self.codec.connaitre(e.message.value for e in events)  # a new schema id: fetched, not blocking
        lus: dict[str, Assure] = {}  # assuré -> their entry as the table held it before this batch
        lot: dict[str, Assure] = {}  # assuré -> their entry as this batch leaves it (hint, ids)
        routes: dict[str, list[tuple[faust.types.EventT, Signalement, accueil.Routage]]] = {}
        paquets = batches.Paquets(self.topo.app.conf.topic_partitions)
        for event in events:
            batches.pour(event)
            s = self.decoder(event.message)
            if isinstance(s, Rejet):
                await self.rejets.envoyer(self.envois, event.message, s, STAGE)
                continue
            logs.avec_id(s.signalement_id)
            nir = s.nir_pseudonyme
            if nir not in lus:
                lus[nir] = Assure.lire(self.topo.assures.get(nir))
            assure = lot.get(nir) or lus[nir]
            try:
                r = accueil.accueillir(assure, s, self.config.moteur, maintenant)
            except Exception as exc:
                log.exception("routing failed on %s[%d]@%d", event.message.topic, event.message.partition,
                              event.message.offset)
                await self.rejets.envoyer(self.envois, event.message, Rejet("erreur-interne", type(exc).__name__), STAGE)
                continue
            if r is None:
                continue  # a resend: already routed
            lot[nir] = accueil.retenir(assure, [(s, r)], maintenant)  # seen for the rest of the batch only
            routes.setdefault(nir, []).append((event, s, r))
            await self._emettre(event, s, r, paquets)
        await paquets.envoyer(self.envois, self.topo.equipes, messages.encoder_paquet)
        await self.rejets.apres_echecs(self.envois, echecs := await self.sortie.confirmer(), STAGE)
        perdus = {id(o) for o, _ in batches.origines(echecs)}
        # Marked seen only now: the mark (a changelog) and the output go to different partitions,
        # and a crash between them must leave a signalement routed twice rather than never.
        for nir, faits in routes.items():
            acquis = [(s, r) for event, s, r in faits if id(event.message) not in perdus]
            if acquis:
                batches.pour(faits[-1][0])
                # All sent (the usual case): the batch's own entry is that of its acknowledged routings.
                entree = lot[nir] if len(acquis) == len(faits) else accueil.retenir(lus[nir], acquis, maintenant)
                self.topo.assures[nir] = entree.model_dump(mode="json")
        await self.rejets.apres_echecs(self.envois, await self.envois.confirmer(), STAGE)

    async def _emettre(self, event: faust.types.EventT, s: Signalement, r: accueil.Routage,
                       paquets: batches.Paquets) -> None:
        """A decision out: an Affectation now when no team is involved, else the team's message."""
        aff = r.aff if isinstance(r, SansEquipe) else r.message.aff
        metrics.DECISIONS.labels(aff.regle, aff.axe.value).inc()
        span = tracing.debut("routage", event.message.headers, signalement_id=s.signalement_id,
                             source=s.source.value, regle=aff.regle, axe=aff.axe.value)
        if isinstance(r, SansEquipe):
            metrics.LATENCE.observe(max(0.0, (aff.decide_le - s.recu_le).total_seconds()))
            await self.sortie.envoyer(r.aff, event.message, tracing.entetes(span))
        else:
            message = r.message if span is None else r.message.model_copy(update={"trace": tracing.texte(span)})
            paquets.ajouter(r.equipe.encode(), (r.equipe, message), origine=event.message)
        tracing.fin(span)


def install(topo: Topology, routeur: Routeur) -> None:
    @topo.app.agent(topo.entrants, name="routage", concurrency=1)
    async def routage_agent(stream: faust.StreamT) -> None:
        async for events in batches.par_lots(stream):
            await batches.sans_perte(routeur.traiter_lot(events))

    @topo.app.timer(interval=2.0, name="routing-config-reload")
    async def recharger() -> None:
        routeur.config.verifier()
