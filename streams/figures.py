"""Live aggregates: two small stages, each keyed so that its table is co-partitioned.

1. :meth:`Agregation.appliquer` sees each Affectation and Suivi (both keyed by
   ``signalement_id``, same partition count), so a signalement's decisions and suivis
   meet in one partition. It runs inside the life-cycle agent's pass over those topics
   (:mod:`streams.lifecycle`): one Faust event and one Avro decode per record instead of two.
   An Affectation (v3) carries the assuré's profile, so the ingress is not re-keyed for
   the figures. Both cuts were measured with ``aiguillage bench`` (issue 8). It keeps one
   *dossier* per signalement, in that agent's ``cycles`` entry (one changelog record for
   both, written once per batch), and maintains, in memory, the per-partition totals
   its dossiers contribute (:mod:`aiguillage.agregats.calcul`). A timer publishes the totals
   that changed (absolute values, not deltas: a replay is harmless) to
   ``…-agregats-partiels``, in packets: one record per partition of the aggregate keys it
   carries, each key with the values of all the worker's source partitions
   (:func:`paquets_partiels`). After a rebalance or a restart the
   in-memory totals are rebuilt from the recovered dossiers, which are the only state with
   a changelog: a slice at a time between the agents' batches (:class:`Reconstruction`), so
   that the worker routes meanwhile; figures are published again once it is done.
2. ``agregats-totaux`` keeps, per aggregate key, each partition's latest value; a
   timer sums them, applies statistical confidentiality and publishes the
   figures that changed to the compacted ``agregats`` topic (Avro ``Agregat``).

Publishing on a timer (``AIGUILLAGE_AGREGATS_INTERVALLE``) rather than on every change
bounds the traffic: a tick costs a message per figure that changed, whatever the rate.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import faust

from aiguillage import topics
from aiguillage.agregats import calcul, publication
from aiguillage.codec import AvroCodec
from aiguillage.dlq import Rejet
from aiguillage.kafka import partition_de
from streams import batches
from streams.batches import Tampon
from streams.dead_letters import DeadLetters
from streams.topology import options_table

log = logging.getLogger(__name__)

APPLIQUER = {
    "Affectation": calcul.appliquer_affectation,
    "Suivi": calcul.appliquer_suivi,
}


class Agregation:
    def __init__(self, app: faust.App, codec: AvroCodec, seuil: int, cycles: Any) -> None:
        self.app, self.codec, self.seuil = app, codec, seuil
        n = app.conf.topic_partitions
        self.nom_partiels = f"{app.conf.id}-agregats-partiels"
        self.partiels_topic = app.topic(self.nom_partiels, internal=True, partitions=n)
        self.agregats_topic = app.topic(topics.AGREGATS, internal=False)
        self.nom_affectations = topics.affectations_du_cycle(app.conf.id)  # the life cycle's, whose pass this is
        self.schemas = {self.nom_affectations: "Affectation", topics.SUIVIS: "Suivi"}
        # signalement_id -> its dossier (signalement, latest affectation, escalations, suivis),
        # kept as the "ag" of the life cycle's entry: that agent writes both once per batch.
        self.cycles = cycles
        self.totaux = app.Table(
            "agregats_totaux", partitions=n,
            help="aggregate key -> {partition of stage 1: its latest value}", options=options_table(),
        )
        # What the dossiers of purged (closed, past their grace) signalements contributed, per
        # source partition: the totals are rebuilt from these and the live dossiers.
        self.archives = app.Table(
            "agregats_archives", partitions=n,
            help="'partition|aggregate key' -> what purged dossiers contributed (a count or {days: count})",
            options=options_table(),
        )
        self.archivage = Tampon(self.archives)
        # Stage 1, in memory: (partition, cle) -> count or {days: count}; rebuilt from dossiers. The
        # changes since the last publication wait as groups of keys, per partition (see _replier).
        self.partiels: dict[tuple[int, str], publication.Valeur] = {}
        self.partiels_sales: set[tuple[int, str]] = set()
        self.groupes: dict[int, dict[calcul.Groupe, int]] = {}
        self.partiels_pour: frozenset[int] | None = None
        self.a_reconstruire = True  # after each assignment, before the first batch is applied
        self.reconstruction: Reconstruction | None = None  # the rebuild under way, if any
        # Stage 2, in memory: what was last published (bounded: forgetting one only publishes an
        # unchanged figure again, harmless on a compacted topic), and which keys changed since.
        self.totaux_sales: set[str] = set()
        self.totaux_pour: frozenset[int] | None = None
        self.publies: Derniers = Derniers(PUBLIES_MAX)

    # -- stage 1 -------------------------------------------------------------------------

    def sur_assignation(self, *_: Any, **__: Any) -> None:
        self.a_reconstruire = True

    def debut_lot(self) -> None:
        """Start rebuilding the totals at the first batch after an assignment, when the recovered
        dossiers are complete and nothing of the batch is applied yet."""
        if self.a_reconstruire:
            self.reconstruire_partiels(self._assignees(self.nom_affectations))

    def _avant_changement(self, cle: str, d: dict[str, Any] | None) -> None:
        """During a rebuild, a dossier about to change (or go) that the pass has not counted yet:
        counted now, as it was, and skipped by the pass."""
        r = self.reconstruction
        if r is not None and r.a_compter(cle):
            r.comptes.add(cle)  # a new dossier too: its first change counts it whole, its next ones as changes
            self._compter(d, r.assignees)

    def _compter(self, d: dict[str, Any] | None, assignees: frozenset[int]) -> None:
        """A whole dossier into its partition's totals, if that partition is ours."""
        if d and d.get("p") in assignees:
            self._differer(d["p"], calcul.groupes(d))

    def appliquer(self, msg: Any, record: dict[str, Any], etats: Tampon) -> None:
        """One decoded Affectation or Suivi into its dossier (called by the life-cycle agent,
        whose pass over these topics this stage shares, with that batch's ``cycles`` writes)."""
        cle = (msg.key or b"").decode()
        if not cle:
            raise ValueError(f"{msg.topic} record without a key")
        entree = etats.get(cle) or {}
        avant = entree.get("ag")
        apres = APPLIQUER[self.schemas[msg.topic]](avant, record)
        apres["p"] = msg.partition
        if apres == avant:
            return  # a resend: nothing changed
        self._avant_changement(cle, avant)
        etats[cle] = {**entree, "ag": apres}  # a new value, so the changelog gets it
        self._differer(msg.partition, calcul.difference_groupes(avant, apres))

    def archiver(self, msg: Any, sid: str, entree: dict[str, Any], etats: Tampon) -> None:
        """A purged signalement's dossier: its contributions join its partition's archive (the
        totals in memory already hold them); the dossier itself goes with the entry."""
        d = entree.get("ag")
        if not d:
            return
        self._avant_changement(sid, d)
        p = d.get("p", msg.partition)
        for (c, bucket), n in calcul.contributions(d).items():
            cle = f"{p}|{c}"
            avant = self.archivage.get(cle)
            if bucket is None:
                self.archivage[cle] = (avant if isinstance(avant, int) else 0) + n
            else:
                hist = dict(avant) if isinstance(avant, dict) else {}
                hist[str(bucket)] = hist.get(str(bucket), 0) + n
                self.archivage[cle] = hist

    def fin_lot(self) -> None:
        self.archivage.ecrire()

    def _differer(self, p: int, delta: dict[calcul.Groupe, int]) -> None:
        """A dossier's change, as a few groups of keys: named and added at the next publication."""
        calcul.cumuler(self.groupes.setdefault(p, {}), delta)

    def _replier(self) -> None:
        """The changes waiting as groups into the totals, each group's keys named once for all the
        dossiers that share it (a signalement's ~60 keys cost ~40 % of the figures' own work when
        added one dossier at a time, measured with ``aiguillage bench``)."""
        groupes, self.groupes = self.groupes, {}
        for p, delta in groupes.items():
            self._ajouter_tout(p, calcul.etendre(delta))  # a key whose groups cancelled out is skipped there

    def _ajouter(self, p: int, c: str, bucket: int | None, n: int) -> None:
        self._ajouter_tout(p, {(c, bucket): n})

    def _ajouter_tout(self, p: int, delta: dict[calcul.Contribution, int]) -> None:
        """Changes into partition ``p``'s totals: one loop, no call per key."""
        partiels, cles = self.partiels, []
        for (c, bucket), n in delta.items():
            if not n:
                continue  # groups that named the same key cancelled out: unchanged
            k = (p, c)
            cles.append(k)
            cur = partiels.get(k)
            if bucket is None:
                partiels[k] = (cur if isinstance(cur, int) else 0) + n
                continue
            if not isinstance(cur, dict):
                partiels[k] = cur = {}
            if v := cur.get(bucket, 0) + n:  # in place: a value is only read to be encoded at once
                cur[bucket] = v
            else:
                cur.pop(bucket, None)
        self.partiels_sales.update(cles)

    def _pret(self) -> bool:
        return not self.app.rebalancing and self.app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]

    def _totaux_complets(self) -> bool:
        """Stage 1's totals may be published: no rebalance, no rebuild under way."""
        return self.reconstruction is None and self._pret()

    def _assignees(self, topic: str) -> frozenset[int]:
        return frozenset(tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic)

    def reconstruire_partiels(self, assignees: frozenset[int], pas: int = 500) -> Reconstruction:
        """After a rebalance or a restart: the totals of our partitions, from the archives (at once)
        and the recovered dossiers (a slice at a time, in a task of its own; an earlier rebuild
        stops at its next slice)."""
        self.partiels, self.partiels_sales, self.groupes = {}, set(), {}
        for cle, v in self.archives.items():  # what purged dossiers contributed
            p, _, c = cle.partition("|")
            if int(p) in assignees:
                for bucket, n in (v.items() if isinstance(v, dict) else [(None, v)]):
                    self._ajouter(int(p), c, None if bucket is None else int(bucket), n)
        self.partiels_pour = assignees
        self.a_reconstruire = False  # this assignment's rebuild, whether a batch or a tick starts it
        r = self.reconstruction = Reconstruction(assignees, self.cycles.keys())
        # In a context of its own: created inside a batch, the task would inherit that batch's current
        # event, and Faust's RocksDB store would then read every dossier from that event's partition only.
        r.tache = asyncio.get_running_loop().create_task(self._reconstruire(r, pas), context=contextvars.Context())
        return r

    async def _reconstruire(self, r: Reconstruction, pas: int, tranche: float = 0.002) -> None:
        """Slices of at most ``pas`` dossiers and ``tranche`` seconds, the agents' turn between two:
        at 100 ms a slice, the routing of the first new signalements waited for the whole rebuild."""
        debut = time.monotonic()
        try:
            while r is self.reconstruction and r.i < len(r.cles):
                fin = time.monotonic() + tranche
                for cle in r.cles[r.i:r.i + pas]:  # no await in a slice: nothing writes the table meanwhile
                    if cle not in r.comptes:
                        self._compter((self.cycles.get(cle) or {}).get("ag"), r.assignees)
                    r.i += 1
                    if time.monotonic() > fin:
                        break
                await asyncio.sleep(0)  # the agents' turn
        except Exception:
            log.exception("aggregates: the rebuild failed; it starts again at the next batch or tick")
            self.a_reconstruire, self.partiels_pour = True, None
            return
        finally:
            if r is self.reconstruction:
                self.reconstruction = None
        if r.i == len(r.cles):
            log.info("aggregates rebuilt for partitions %s from %d dossiers in %.1f s: %d figures",
                     sorted(r.assignees), len(r.cles), time.monotonic() - debut, len(self.partiels))

    async def publier_partiels(self, etaler: float = 0.0) -> None:
        if not self._pret():
            return
        assignees = self._assignees(self.nom_affectations)
        if assignees != self.partiels_pour:  # no batch since the assignment: rebuild from here
            self.reconstruire_partiels(assignees)
            return
        if self.reconstruction is not None:
            return  # partial totals: published when the rebuild is done
        self._replier()
        sales, self.partiels_sales = self.partiels_sales, set()
        paquets = paquets_partiels(sales, self.app.conf.topic_partitions)
        rythme = batches.Etalement(len(sales), etaler)
        try:
            for dest, cles in paquets:
                # Read at send time (the agents run during the pauses), one record per packet.
                ps = {c: {str(p): self.partiels.get((p, c), 0) for p in sources} for c, sources in cles.items()}
                body = json.dumps({"ps": ps}, separators=(",", ":")).encode()
                await self.partiels_topic.send(key=f"*>{dest}".encode(), value=body, partition=dest)
                if not await rythme.apres_envoi(self._totaux_complets, poids=sum(map(len, cles.values()))):
                    # A rebalance (and its rebuild) began during a pause: stop, or a partition's new owner could get
                    # this worker's older value after its own. Its rebuild, or the next tick, sends them.
                    self.partiels_sales |= sales
                    return
        except Exception:
            self.partiels_sales |= sales  # try again on the next tick
            raise

    # -- stage 2 -------------------------------------------------------------------------

    def cumuler(self, event: faust.types.EventT) -> None:
        """A packet of stage 1's values, ``{"ps": {cle: {source partition: value}}}``: each key of
        it on this partition, with the values of every source partition the sending worker holds,
        so that an entry is written once per packet, not once per source. Still read, so that a
        topic written by an older worker drains: ``{"p", "vs": {cle: value}}`` (one source a
        packet) and ``{"p", "v"}`` (one value keyed by its figure)."""
        msg = event.message
        body = json.loads(msg.value or b"{}")
        if "ps" in body:
            ps = body["ps"]
        else:
            vs = body["vs"] if "vs" in body else {(msg.key or b"").decode(): body["v"]}
            ps = {c: {str(body["p"]): v} for c, v in vs.items()}
        for c, valeurs in ps.items():
            entree = self.totaux.get(c)
            v = {**(entree["v"] if entree else {}), **valeurs}
            if entree is None or v != entree["v"] or entree["p"] != msg.partition:  # a resend writes nothing
                self.totaux[c] = {"p": msg.partition, "v": v}
            self.totaux_sales.add(c)

    async def publier_agregats(self, etaler: float = 0.0) -> None:
        if not self._pret():
            return
        assignees = self._assignees(self.nom_partiels)
        if assignees != self.totaux_pour:
            # Republish what we now own: a tick may have been lost with the previous owner.
            self.totaux_sales = {c for c, e in list(self.totaux.items()) if e and e["p"] in assignees}
            self.publies = Derniers(PUBLIES_MAX)
            self.totaux_pour = assignees
        sales, self.totaux_sales = self.totaux_sales, set()
        maintenant = datetime.now(UTC)
        rythme = batches.Etalement(len(sales), etaler)
        try:
            for c in sales:
                entree = self.totaux.get(c)
                if not entree:
                    continue
                total = publication.fusionner(entree["v"].values())
                for rec in publication.agregats(c, total, self.seuil, maintenant):
                    etat = (rec["valeur"], rec["masque"])
                    if self.publies.get(rec["cle"]) == etat:
                        continue
                    await self.agregats_topic.send(key=rec["cle"].encode(), value=self.codec.encode("Agregat", rec))
                    self.publies[rec["cle"]] = etat
                if not await rythme.apres_envoi(self._pret):  # a rebalance: as in publier_partiels
                    self.totaux_sales |= sales
                    return
        except Exception:
            self.totaux_sales |= sales
            raise


class Reconstruction:
    """A rebuild of stage 1's totals from the dossiers, in key order, a slice at a time (one
    synchronous pass over 400,000 dossiers froze the worker, routing included, for tens of
    seconds after each restart). A dossier the life cycle changes before the pass reaches it
    is counted at that moment, as it was (:meth:`Agregation._avant_changement`), and skipped."""

    def __init__(self, assignees: frozenset[int], cles: Iterable[str]) -> None:
        self.assignees = assignees
        self.cles = sorted(cles)
        self.i = 0  # the pass has counted cles[:i]
        self.comptes: set[str] = set()  # counted ahead of the pass
        self.tache: asyncio.Future[None] | None = None

    def a_compter(self, cle: str) -> bool:
        """Whether this dossier, as it is now, is not yet in the totals: neither passed nor counted
        ahead of the pass (a dossier new since the rebuild began is counted ahead at its first change)."""
        return cle not in self.comptes and not (self.i and cle <= self.cles[self.i - 1])


PUBLIES_MAX = 200_000  # figures whose last published value is remembered


class Derniers(OrderedDict[str, tuple[float | None, bool]]):
    """The last value published per figure, the ``n`` most recently published at most."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def __setitem__(self, cle: str, valeur: tuple[float | None, bool]) -> None:
        super().__setitem__(cle, valeur)
        self.move_to_end(cle)
        if len(self) > self.n:
            self.popitem(last=False)


def paquets_partiels(sales: set[tuple[int, str]], n: int, taille: int = batches.PAQUET) -> list[tuple[int, dict[str, list[int]]]]:
    """Stage 1's changed figures as packets ``(stage 2 partition, {key: [source partitions]})``:
    each key goes where a record keyed by it would (its table entry lives there), with every
    source partition of this worker whose value of it changed, at most ``taille`` keys a packet.
    A record per figure (~3,700 per tick at 100 signalements/s) cost the second stage a Faust event
    each (issue 8); a packet per source partition cost it a changelog record per key and source:
    0.4 records per signalement of a drain, 1.7 at 250/s, with four partitions (issue 22)."""
    par_cle: dict[str, list[int]] = {}
    for p, c in sorted(sales):
        par_cle.setdefault(c, []).append(p)
    par_dest: dict[int, list[str]] = {}
    for c in par_cle:
        par_dest.setdefault(partition_de(c.encode(), n), []).append(c)
    return [(d, {c: par_cle[c] for c in cles[i:i + taille]})
            for d, cles in sorted(par_dest.items()) for i in range(0, len(cles), taille)]


def install(app: faust.App, codec: AvroCodec, cycles: Any, rejets: DeadLetters,
            seuil: int = publication.SEUIL_PAR_DEFAUT, intervalle: float = 1.0) -> Agregation:
    ag = Agregation(app, codec, seuil, cycles)
    app.on_partitions_assigned.connect(ag.sur_assignation)
    envois = rejets.envois()

    async def cumuler(events: list[faust.types.EventT]) -> None:
        for event in events:
            batches.pour(event)  # its table write goes to its own partition
            try:
                ag.cumuler(event)
            except Exception as exc:
                m = event.message
                log.exception("aggregates: cumuler failed on %s[%d]@%d", m.topic, m.partition, m.offset)
                await rejets.envoyer(envois, m, Rejet("erreur-interne", type(exc).__name__), "agregats")
        await rejets.apres_echecs(envois, await envois.confirmer(), "agregats")

    @app.agent(ag.partiels_topic, name="agregats-totaux", concurrency=1)
    async def totaux(stream: faust.StreamT) -> None:
        async for events in batches.par_lots_de_paquets(stream):
            await batches.sans_perte(cumuler(events))

    @app.timer(interval=intervalle, name="agregats-publier")
    async def publier() -> None:
        try:
            # Each stage's burst spread over a third of the interval: the tick ends before the next.
            await ag.publier_partiels(etaler=intervalle / 3)
            await ag.publier_agregats(etaler=intervalle / 3)
        except Exception:
            log.exception("aggregates: publishing failed; retrying")

    return ag
