"""The team agent: reads what a team's decision needs, calls it, writes and sends what it says.

Consumes ``<app>-equipes`` (key: team id), where routing and the life cycle send typed messages
(:mod:`aiguillage.routing.messages`); the decisions are :mod:`aiguillage.routing.equipe`'s, pure.
One team's caseloads, waiting file and open cases are on one partition (:mod:`streams.state`).

Messages come in batches (:mod:`streams.batches`): a decision's table writes are made at once (the
next message of the batch must see them), its outputs are sent, and the batch is acknowledged
only once every output is (:class:`streams.batches.Envois`). A message that cannot be processed,
or whose outputs the broker never acknowledges, is dead-lettered with the reason; a redelivered
message finds its case recorded and sends its Affectation again. Caseloads are published once
per batch (the latest value of each), through the one masking path of the figures.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
from pydantic import ValidationError

from aiguillage import metrics, tracing
from aiguillage.agregats import periodes, publication
from aiguillage.codec import AvroCodec
from aiguillage.dlq import Rejet
from aiguillage.domain import Axe
from aiguillage.kafka import partition_de
from aiguillage.routing import equipe as core
from aiguillage.routing import messages
from aiguillage.routing.affectation import placer
from aiguillage.routing.priorite import EnAttente
from aiguillage.routing.rechargement import ConfigCourante
from streams import batches
from streams.affectation_packets import SortieAffectations
from streams.dead_letters import DeadLetters, Origine
from streams.topology import Topology
from streams.waiting_files import FilesAttente, FilesEnMemoire, Reconstruction, instantane

log = logging.getLogger(__name__)
STAGE = "equipes"


class Equipes:
    def __init__(self, topo: Topology, codec: AvroCodec, config: ConfigCourante, rejets: DeadLetters,
                 seuil: int = publication.SEUIL_PAR_DEFAUT, files: FilesAttente | None = None) -> None:
        self.topo, self.codec, self.config, self.rejets, self.seuil = topo, codec, config, rejets, seuil
        self._files = files if files is not None else FilesEnMemoire()  # a cache of the waiting dossiers
        self._files_a_jour = False  # rebuilt from the dossiers table after each rebalance
        self._reconstruction: Reconstruction | None = None  # that rebuild, while under way
        self._locales: frozenset[int] | None = None  # our partitions of <app>-equipes, until a rebalance
        self.envois = rejets.envois()
        self.sortie = SortieAffectations(topo, codec, self.envois)
        self._charges: dict[tuple[str, str], int] = {}  # caseloads changed in this batch: published at its end

    def oublier_cache(self, *_: Any, **__: Any) -> None:
        self._files_a_jour = False
        if self._reconstruction is not None:  # a pass under way stops here
            self._reconstruction.abandonner()
        self._reconstruction = None
        self._locales = None

    # -- reading what a decision needs ------------------------------------------------------

    def reconstruire_files(self) -> Reconstruction:
        """After a rebalance, at the first batch: the files from the dossiers we now hold (Faust has
        recovered them), a slice at a time in a task of its own, the batches going on meanwhile.
        In a context of its own: created inside a batch, the task would inherit that batch's event,
        and Faust's RocksDB store reads a key from that event's partition only."""
        r = self._commencer()
        asyncio.get_running_loop().create_task(self._poursuivre(r), context=contextvars.Context())
        return r

    def _commencer(self) -> Reconstruction:
        self._files.effacer()
        r = self._reconstruction = Reconstruction(self._files, instantane(self.topo.dossiers))
        return r

    async def _poursuivre(self, r: Reconstruction, pas: int = 500, duree: float = 0.002) -> None:
        try:
            while r is self._reconstruction and not r.fini:
                r.tranche(pas, duree)
                await asyncio.sleep(0)  # the agents' turn
        except Exception:
            log.exception("waiting files: the rebuild failed; it starts again at the next batch")
            r.abandonner()
            if r is self._reconstruction:
                self._reconstruction = None
            return
        if r is self._reconstruction:
            self._terminer(r)

    def _terminer(self, r: Reconstruction) -> None:
        self._files_a_jour, self._reconstruction = True, None
        log.info("waiting files rebuilt from %d dossiers in %.1f s: %d waiting", r.lus, time.monotonic() - r.debut,
                 r.en_attente)

    def files(self) -> FilesAttente:
        """The files, whole: a decision that reads one finishes a pass under way, at once."""
        if not self._files_a_jour:
            r = self._reconstruction or self._commencer()  # no task: the pass ends here
            r.tranche()
            self._terminer(r)
        return self._files

    def dossier(self, sid: str | None) -> core.Dossier | None:
        raw = self.topo.dossiers.get(sid) if sid else None
        return core.Dossier.model_validate(raw) if raw else None

    def contexte(self, equipe: str, m: messages.MessageEquipe, maintenant: datetime) -> core.Contexte:
        aff = getattr(m, "aff", None)
        dossier = self.dossier(aff.signalement_id if aff is not None else m.sid)  # type: ignore[union-attr]
        nir = aff.nir_pseudonyme if aff is not None else (dossier.aff.nir_pseudonyme if dossier else None)
        raw = self.topo.assures_equipe.get(core.cle_ouvert(equipe, nir)) if nir else None
        ouvert = core.Ouvert.model_validate(raw) if raw else None
        return core.Contexte(
            equipe, self.config.moteur, maintenant, dossier, ouvert,
            self.dossier(ouvert.dossier) if ouvert else None,
            charge_lue=lambda a: self.topo.charges[f"{equipe}|{a}"],
            voisine_pleine=self.pleine_ici, escalades=self.topo.escalades[equipe],
        )

    def file(self, equipe: str, maintenant: datetime) -> Iterator[core.Dossier]:
        """The team's waiting dossiers in file order, read lazily (the index is a cache)."""
        jours = self.config.moteur.config.vieillissement.jours_par_niveau
        for item in self.files().en_ordre(equipe, maintenant, jours):
            d = self.dossier(item.signalement_id)
            if d is None or not d.en_attente:
                self._files.retirer(equipe, item.signalement_id)  # never place what the table no longer holds
                continue
            yield d

    def pleine_ici(self, voisine: str, axe: Axe) -> bool:
        """The neighbour team is full for ``axe``, read here only when its partition is ours (its
        caseloads are then up to date): most overflows in saturation come straight back."""
        if not self.est_locale(voisine):
            return False
        return placer(self.config.moteur, voisine, axe, lambda a: self.topo.charges[f"{voisine}|{a}"],
                      deja_deborde=True).assistant is None

    def est_locale(self, equipe: str) -> bool:
        app = self.topo.app
        if self._locales is None:  # read once per assignment (oublier_cache runs on each rebalance)
            nom = self.topo.equipes.get_topic_name()
            self._locales = frozenset(tp.partition for tp in app.consumer.assignment() if tp.topic == nom)
        return partition_de(equipe.encode(), app.conf.topic_partitions) in self._locales

    # -- writing and sending what it says ---------------------------------------------------

    def ecrire(self, d: core.Decision) -> None:
        for e in d.ecritures_finales():
            if isinstance(e, core.PoserDossier):
                self.topo.dossiers[e.sid] = e.dossier.model_dump(mode="json")
                self._ecrit(e.sid)
                if e.dossier.en_attente:
                    self._files.ajouter(e.dossier.equipe, EnAttente(e.sid, e.dossier.priorite, e.dossier.recu_le))
                else:
                    self._files.retirer(e.dossier.equipe, e.sid)
            elif isinstance(e, core.OterDossier):
                del self.topo.dossiers[e.sid]
                self._ecrit(e.sid)
                self._files.retirer(e.equipe, e.sid)
            elif isinstance(e, core.PoserCharge):
                self.topo.charges[f"{e.equipe}|{e.assistant}"] = e.n
                self._charges[(e.equipe, e.assistant)] = e.n
            elif isinstance(e, core.PoserOuvert):
                if e.ouvert is None:
                    self.topo.assures_equipe.pop(e.cle, None)
                else:
                    self.topo.assures_equipe[e.cle] = e.ouvert.model_dump(exclude_none=True)
            else:
                self.topo.escalades[e.equipe] = e.n

    def _ecrit(self, sid: str) -> None:
        if self._reconstruction is not None:  # filed here as the table now says: the pass skips it
            self._reconstruction.ecrit(sid)

    async def envoyer(self, d: core.Decision, origine: Any, span: Any = None) -> None:
        for s in d.sorties:
            if isinstance(s, core.EmettreAffectation):
                if s.aff.sequence == 0:  # the signalement's first decision: reception to routed
                    metrics.LATENCE.observe(max(0.0, (datetime.now(UTC) - s.aff.recu_le).total_seconds()))
                elif s.aff.nature == "escalade":
                    metrics.ESCALADES.inc()
                await self.sortie.envoyer(s.aff, origine, tracing.entetes(span))
            elif isinstance(s, core.Transmettre):
                message = s.message
                if span is not None and isinstance(message, messages.Nouveau):  # the journey goes on there
                    message = message.model_copy(update={"trace": tracing.texte(span)})
                await self.envois.envoyer(self.topo.equipes, messages.encoder(message), key=s.equipe.encode(),
                                          origine=origine)
            else:
                await self.publier(s.indicateur, s.dimensions, s.valeur, origine)

    async def publier(self, indicateur: str, dimensions: dict[str, str], valeur: int, origine: Any = None) -> None:
        """A live figure on ``agregats``, masked as every figure is (:mod:`aiguillage.agregats.publication`)."""
        cle = periodes.cle(indicateur, "courant", "courant", dimensions)
        for rec in publication.agregats(cle, valeur, self.seuil, datetime.now(UTC)):
            await self.envois.envoyer(self.topo.agregats, self.codec.encode("Agregat", rec), key=rec["cle"].encode(),
                                      origine=origine)

    # -- the batch ----------------------------------------------------------------------------

    async def traiter_record(self, msg: Any) -> int:
        """One record of ``<app>-equipes``: a message, or routing's packet of them. A message that
        fails is dead-lettered (its own JSON as the payload) and the others go on."""
        try:
            recus = messages.decoder(msg.key, msg.value)
        except (ValidationError, ValueError) as exc:
            await self.rejets.envoyer(self.envois, msg, Rejet("message-invalide", f"{type(exc).__name__}: {exc}"[:500]), STAGE)
            return 1
        for equipe, m in recus:
            # Dead-lettered as a packet of one: the team travels with it (`aiguillage dlq replay`).
            origine = Origine(msg, partial(messages.encoder_paquet, [(equipe, m)]),
                              _source(getattr(getattr(m, "aff", None), "source", None)))
            trace = getattr(m, "trace", None)  # a signalement's journey, when tracing is on
            span = trace and tracing.debut("equipe", traceparent=trace, equipe=equipe,
                                           signalement_id=m.aff.signalement_id)  # type: ignore[union-attr]
            try:
                maintenant = datetime.now(UTC)
                d = core.decider(self.contexte(equipe, m, maintenant), m, partial(self.file, equipe, maintenant))
                self.ecrire(d)
                await self.envoyer(d, origine, span)
            except Exception as exc:
                log.exception("team agent failed on a message to %s", equipe)
                await self.rejets.envoyer(self.envois, msg, Rejet("erreur-interne", f"{type(exc).__name__}"), STAGE,
                                          source=origine.source, payload=origine.payload)
            finally:
                tracing.fin(span)
        return len(recus)

    async def traiter_lot(self, events: list[faust.types.EventT]) -> None:
        """A batch; acks are awaited every ``batches.TAILLE`` messages (a batch of packets holds up to
        5,000) and at its end. Raises only :class:`streams.batches.EnvoiImpossible`."""
        if not self._files_a_jour and self._reconstruction is None:
            self.reconstruire_files()
        n = 0
        for event in events:
            batches.pour(event)
            n += await self.traiter_record(event.message)
            if n >= batches.TAILLE:
                await self.confirmer(fin=False)
                n = 0
        await self.confirmer()

    async def confirmer(self, fin: bool = True) -> None:
        charges, self._charges = self._charges, {}
        for (equipe, assistant), valeur in charges.items():
            await self.publier("charge-assistant", {"assistant": assistant, "equipe": equipe}, valeur)
        await self.rejets.apres_echecs(self.envois, await self.sortie.confirmer(fin), STAGE)


def _source(valeur: Any) -> str | None:
    return getattr(valeur, "value", valeur)


def install(topo: Topology, equipes: Equipes) -> None:
    topo.app.on_partitions_revoked.connect(equipes.oublier_cache)
    topo.app.on_partitions_assigned.connect(equipes.oublier_cache)

    @topo.app.agent(topo.equipes, name="equipes", concurrency=1)
    async def equipes_agent(stream: faust.StreamT) -> None:
        async for events in batches.par_lots_de_paquets(stream):
            await batches.sans_perte(equipes.traiter_lot(events))
