"""Live aggregates: two small stages, each keyed so that its table is co-partitioned.

1. :meth:`Agregation.appliquer` sees each Affectation and Suivi (both keyed by
   ``signalement_id``, same partition count), so a signalement's decisions and suivis
   meet in one partition. It runs inside the life-cycle agent's pass over those topics
   (:mod:`streams.cycle`): one Faust event and one Avro decode per record instead of two.
   An Affectation (v3) carries the assuré's profile, so the ingress is not re-keyed for
   the figures. Both cuts were measured with ``aiguillage bench`` (issue 8). It keeps one
   *dossier* per signalement, in that agent's ``cycles`` entry (one changelog record for
   both, written once per batch), and maintains, in memory, the per-partition totals
   its dossiers contribute (:mod:`aiguillage.agregats.calcul`). A timer publishes the totals
   that changed (absolute values, not deltas: a replay is harmless) to
   ``…-agregats-partiels``, in packets: one record per source partition and partition of
   the aggregate keys it carries (:func:`paquets_partiels`). After a rebalance or a restart the
   in-memory totals are rebuilt from the recovered dossiers, which are the only state with
   a changelog.
2. ``agregats-totaux`` keeps, per aggregate key, each partition's latest value; a
   timer sums them, applies statistical confidentiality and publishes the
   figures that changed to the compacted ``agregats`` topic (Avro ``Agregat``).

Publishing on a timer (``AIGUILLAGE_AGREGATS_INTERVALLE``) rather than on every change
bounds the traffic: a tick costs a message per figure that changed, whatever the rate.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import faust

from aiguillage import topics
from aiguillage.agregats import calcul, publication
from aiguillage.codec import AvroCodec
from aiguillage.kafka import partition_de
from streams import lots
from streams.lots import Tampon
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
        self.schemas = {topics.AFFECTATIONS: "Affectation", topics.SUIVIS: "Suivi"}
        # signalement_id -> its dossier (signalement, latest affectation, escalations, suivis),
        # kept as the "ag" of the life cycle's entry: that agent writes both once per batch.
        self.cycles = cycles
        self.totaux = app.Table(
            "agregats_totaux", partitions=n,
            help="aggregate key -> {partition of stage 1: its latest value}", options=options_table(),
        )
        # Stage 1, in memory: (partition, cle) -> count or {days: count}; rebuilt from dossiers.
        self.partiels: dict[tuple[int, str], publication.Valeur] = {}
        self.partiels_sales: set[tuple[int, str]] = set()
        self.partiels_pour: frozenset[int] | None = None
        self.a_reconstruire = True  # after each assignment, before the first batch is applied
        # Stage 2, in memory: what was last published, and which keys changed since.
        self.totaux_sales: set[str] = set()
        self.totaux_pour: frozenset[int] | None = None
        self.publies: dict[str, tuple[float | None, bool]] = {}

    # -- stage 1 -------------------------------------------------------------------------

    def sur_assignation(self, *_: Any, **__: Any) -> None:
        self.a_reconstruire = True

    def debut_lot(self) -> None:
        """Rebuild the totals at the first batch after an assignment, when the recovered dossiers
        are complete and nothing of the batch is applied yet: the rebuild is one synchronous pass
        over the dossiers (~50 µs each), and at the first tick instead it froze the worker
        in steady state (~180 ms for 3,000 dossiers, measured with `aiguillage bench`)."""
        if self.a_reconstruire:
            self.a_reconstruire = False
            self.reconstruire_partiels(self._assignees(topics.AFFECTATIONS))

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
        etats[cle] = {**entree, "ag": apres}  # a new value, so the changelog gets it
        for (c, bucket), n in calcul.difference(avant, apres).items():
            self._ajouter(msg.partition, c, bucket, n)

    def _ajouter(self, p: int, c: str, bucket: int | None, n: int) -> None:
        cur = self.partiels.get((p, c))
        if bucket is None:
            self.partiels[(p, c)] = (cur if isinstance(cur, int) else 0) + n
        else:
            hist = dict(cur) if isinstance(cur, dict) else {}
            hist[bucket] = hist.get(bucket, 0) + n
            self.partiels[(p, c)] = {b: k for b, k in hist.items() if k}
        self.partiels_sales.add((p, c))

    def _pret(self) -> bool:
        return not self.app.rebalancing and self.app.tables.recovery.completed.is_set()

    def _assignees(self, topic: str) -> frozenset[int]:
        return frozenset(tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic)

    def reconstruire_partiels(self, assignees: frozenset[int]) -> None:
        """After a rebalance or a restart: the totals of our partitions, from the recovered dossiers."""
        self.partiels, self.partiels_sales = {}, set()
        for c in self.cycles.values():  # no await in this loop: nothing writes the table meanwhile
            d = (c or {}).get("ag")
            if d and d.get("p") in assignees:
                for (c, bucket), n in calcul.contributions(d).items():
                    self._ajouter(d["p"], c, bucket, n)
        self.partiels_pour = assignees
        log.info("aggregates rebuilt for partitions %s: %d figures", sorted(assignees), len(self.partiels))

    async def publier_partiels(self, etaler: float = 0.0) -> None:
        if not self._pret():
            return
        assignees = self._assignees(topics.AFFECTATIONS)
        if assignees != self.partiels_pour:  # no batch since the assignment: rebuild here
            self.reconstruire_partiels(assignees)
        sales, self.partiels_sales = self.partiels_sales, set()
        paquets = paquets_partiels(sales, self.app.conf.topic_partitions)
        rythme = lots.Etalement(len(sales), etaler)
        try:
            for p, dest, cles in paquets:
                # Read at send time (the agents run during the pauses), one record per packet.
                vs = {c: self.partiels.get((p, c), 0) for c in cles}
                body = json.dumps({"p": p, "vs": vs}, separators=(",", ":")).encode()
                await self.partiels_topic.send(key=f"{p}>{dest}".encode(), value=body, partition=dest)
                if not await rythme.apres_envoi(self._pret, poids=len(cles)):
                    # A rebalance began during a pause: stop, or a partition's new owner could get
                    # this worker's older value after its own. Its rebuild, or the next tick, sends them.
                    self.partiels_sales |= sales
                    return
        except Exception:
            self.partiels_sales |= sales  # try again on the next tick
            raise

    # -- stage 2 -------------------------------------------------------------------------

    def cumuler(self, event: faust.types.EventT) -> None:
        """A packet of stage 1's values (``{"p": partition, "vs": {cle: value}}``, every key of
        it on this partition), or one value keyed by its figure (``{"p", "v"}``: the format
        before packets, still read so that a topic written by an older worker drains)."""
        msg = event.message
        body = json.loads(msg.value)
        vs = body["vs"] if "vs" in body else {msg.key.decode(): body["v"]}
        source = str(body["p"])
        for c, v in vs.items():
            entree = self.totaux.get(c) or {"p": msg.partition, "v": {}}
            self.totaux[c] = {"p": msg.partition, "v": {**entree["v"], source: v}}
            self.totaux_sales.add(c)

    async def publier_agregats(self, etaler: float = 0.0) -> None:
        if not self._pret():
            return
        assignees = self._assignees(self.nom_partiels)
        if assignees != self.totaux_pour:
            # Republish what we now own: a tick may have been lost with the previous owner.
            self.totaux_sales = {c for c, e in list(self.totaux.items()) if e and e["p"] in assignees}
            self.publies = {}
            self.totaux_pour = assignees
        sales, self.totaux_sales = self.totaux_sales, set()
        maintenant = datetime.now(UTC)
        rythme = lots.Etalement(len(sales), etaler)
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


def paquets_partiels(sales: set[tuple[int, str]], n: int, taille: int = lots.PAQUET) -> list[tuple[int, int, list[str]]]:
    """Stage 1's changed figures as packets ``(source partition, stage 2 partition, keys)``: each
    key goes where a record keyed by it would (its table entry lives there), at most ``taille``
    keys a packet. A record per figure (~3,700 per tick at 100 signalements/s) cost the second
    stage a Faust event each (issue 8); a packet of ``PAQUET`` keys is one step of the tick's spread."""
    par_dest: dict[tuple[int, int], list[str]] = {}
    for p, c in sorted(sales):
        par_dest.setdefault((p, partition_de(c.encode(), n)), []).append(c)
    return [(p, d, cles[i:i + taille]) for (p, d), cles in par_dest.items() for i in range(0, len(cles), taille)]


def install(app: faust.App, codec: AvroCodec, cycles: Any, seuil: int = publication.SEUIL_PAR_DEFAUT,
            intervalle: float = 1.0) -> Agregation:
    ag = Agregation(app, codec, seuil, cycles)
    app.on_partitions_assigned.connect(ag.sur_assignation)

    @app.agent(ag.partiels_topic, name="agregats-totaux", concurrency=1)
    async def totaux(stream: faust.StreamT) -> None:
        async for events in lots.par_lots_de_paquets(stream):
            for event in events:
                lots.pour(event)  # its table write goes to its own partition
                try:
                    ag.cumuler(event)
                except Exception:
                    m = event.message
                    log.exception("aggregates: cumuler failed on %s[%d]@%d", m.topic, m.partition, m.offset)

    @app.timer(interval=intervalle, name="agregats-publier")
    async def publier() -> None:
        try:
            # Each stage's burst spread over a third of the interval: the tick ends before the next.
            await ag.publier_partiels(etaler=intervalle / 3)
            await ag.publier_agregats(etaler=intervalle / 3)
        except Exception:
            log.exception("aggregates: publishing failed; retrying")

    return ag
