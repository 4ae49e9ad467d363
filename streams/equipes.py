"""The team agent: one team's caseloads, waiting file and open cases, on one partition.

Consumes ``<app>-equipes`` (key: team id). Messages (JSON, :func:`streams.routage.demande`):

- ``nouveau``: place a signalement (link to the assuré's open case, follow a transfer,
  give it to a caseworker, overflow to the neighbour team, or wait);
- ``attendre``: the neighbour team was full too: wait in this (the territory's) file;
- ``liberer``: the case ended (clôture, refus, annulation, back to a partner): free the
  caseworker, then give waiting work to whoever has room;
- ``reorienter``: free, then route again to another axe or team (sequence + 1);
- ``escalade``: first-contact deadline missed: raise the priorité (sequence + 1).

Caseloads are published on ``agregats`` (indicateur ``charge-assistant``) once per batch
(:meth:`Equipes.publier_charges`): the latest value of each that changed. Each change of the
count of missed first-contact deadlines per team (``escalades-premier-contact``) is published
at once.
A configuration that raises a capacity takes effect at the team's next placement or closure
(state is only written while iterating this stream, never from the reload timer).

Messages come in batches (:mod:`streams.lots`): state is written as each message is handled
(the next one in the batch must see it), and the batch's Affectations are acknowledged
before its offsets are. A crash may thus leave a case recorded whose Affectation never
reached the broker; the redelivered message finds the case and sends its Affectation again.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from aiguillage.codec import AvroCodec
from aiguillage.domain import Affectation, Axe
from aiguillage.kafka import partition_de
from aiguillage.routing import priorite as prio
from aiguillage.routing.affectation import (
    Placement,
    avec_placement,
    choisir_assistant,
    nom_file,
    placer,
)
from aiguillage.routing.rechargement import ConfigCourante
from streams import lots
from streams.attente import FilesAttente, FilesEnMemoire
from streams.routage import demande
from streams.topology import Topology

log = logging.getLogger(__name__)
MAX_SAUTS = 4


class Equipes:
    def __init__(self, topo: Topology, codec: AvroCodec, config: ConfigCourante,
                 files: FilesAttente | None = None) -> None:
        self.topo = topo
        self.codec = codec
        self.config = config
        self._files = files if files is not None else FilesEnMemoire()  # the waiting files: a cache of dossiers
        self._files_a_jour = False  # built from the dossiers table once after each rebalance
        self._locales: frozenset[int] | None = None  # our partitions of <app>-equipes, until a rebalance
        self._envois: list[Any] = []  # this batch's Affectations, acknowledged before its offsets
        # Caseloads changed in this batch, published once at its end (a batch placing 500
        # signalements changes ~20 caseloads: 20 figures, not 500). The table itself is written at
        # once, with the case: a batch cut short must not leave a case without its caseload.
        self._a_publier: dict[str, int] = {}

    # -- state helpers -------------------------------------------------------------------

    def oublier_cache(self, *_: Any, **__: Any) -> None:
        self._files_a_jour = False
        self._locales = None

    def files(self) -> FilesAttente:
        """The waiting files of this worker's teams (rebuilt, in one pass over the dossiers, after a rebalance)."""
        if not self._files_a_jour:
            self._files.effacer()
            for sid, d in self.topo.dossiers.items():
                if d and d["assistant"] is None and not d["special"] and not d["lie_a"]:
                    self._files.ajouter(d["equipe"], prio.EnAttente(sid, d["priorite"], datetime.fromisoformat(d["recu_le"])))
            self._files_a_jour = True
        return self._files

    def charge(self, equipe: str) -> Any:
        return lambda assistant: self.topo.charges[f"{equipe}|{assistant}"]

    def changer_charge(self, equipe: str, assistant: str, delta: int) -> None:
        cle = f"{equipe}|{assistant}"
        n = max(0, self.topo.charges[cle] + delta)
        self.topo.charges[cle] = n
        self._a_publier[cle] = n

    async def publier_charges(self) -> None:
        """The caseloads changed since the last call, on ``agregats`` (latest value each)."""
        while self._a_publier:
            cle, n = self._a_publier.popitem()
            equipe, _, assistant = cle.partition("|")
            await self.publier("charge-assistant", {"assistant": assistant, "equipe": equipe}, n)

    async def publier(self, indicateur: str, dimensions: dict[str, str], valeur: int) -> None:
        """A live figure on ``agregats`` (compacted: the latest value per key is what counts)."""
        dims = ",".join(f"{k}={v}" for k, v in sorted(dimensions.items()))
        agregat = {
            "cle": f"{indicateur}|courant|courant|{dims}",
            "indicateur": indicateur,
            "periode_type": "courant",
            "periode": "courant",
            "dimensions": dimensions,
            "valeur": float(valeur),
            "masque": False,
            "maj_le": datetime.now(UTC),
        }
        await self.topo.agregats.send(key=agregat["cle"].encode(), value=self.codec.encode("Agregat", agregat))

    async def emettre(self, aff: Affectation) -> None:
        self._envois.append(await self.topo.affectations.send(key=aff.cle(), value=self.codec.encode("Affectation", aff.to_avro())))

    async def renvoyer(self, dossier: dict[str, Any]) -> None:
        """A redelivered message for a case already recorded: its Affectation may not have
        reached the broker before a crash, so send the latest one again (upserts make it one row)."""
        await self.emettre(Affectation.model_validate(dossier["aff"]))

    def enregistrer(self, aff: Affectation, base: str, special: bool = False, lie_a: str | None = None,
                    reorientation: str | None = None) -> None:
        assert aff.equipe is not None
        self.topo.dossiers[aff.signalement_id] = {
            "equipe": aff.equipe, "assistant": aff.assistant, "axe": aff.axe.value, "priorite": aff.priorite,
            "recu_le": aff.recu_le.isoformat(), "sequence": aff.sequence, "file": aff.file, "special": special,
            "lie_a": lie_a, "base": base, "aff": aff.model_dump(mode="json"), "reorientation": reorientation,
        }
        if aff.assistant is None and not special and not lie_a:
            self.files().ajouter(aff.equipe, prio.EnAttente(aff.signalement_id, aff.priorite, aff.recu_le))
        else:
            self.files().retirer(aff.equipe, aff.signalement_id)

    # -- messages ------------------------------------------------------------------------

    async def traiter(self, equipe: str, m: dict[str, Any]) -> None:
        await getattr(self, f"_{m['kind']}")(equipe, m)

    async def traiter_record(self, cle: bytes, valeur: bytes, ou: str = "") -> int:
        """One record of ``<app>-equipes``: a message keyed by its team, or routing's packet of
        messages to the teams of this partition (:func:`streams.routage.lot_de_demandes`).
        A message that fails is logged and the others go on. Returns how many messages it held."""
        m = json.loads(valeur)
        messages = m["lot"] if "lot" in m else [(cle.decode(), m)]
        for equipe, message in messages:
            try:
                await self.traiter(equipe, message)
            except Exception:
                log.exception("team agent failed on a message to %s (%s)", equipe, ou)
        return len(messages)

    async def traiter_lot(self, events: list[faust.types.EventT]) -> None:
        """Handle a batch, then wait for its Affectations' acks. Never raises.

        A batch of packets holds up to 5,000 messages: caseloads are published and acks awaited
        every ``lots.TAILLE`` messages too, so that what a batch leaves pending (unacked
        Affectations, changelog records) is bounded as it was with one message per record."""
        n = 0
        for event in events:
            lots.pour(event)
            msg = event.message
            ou = f"{msg.topic}[{msg.partition}]@{msg.offset}"
            try:
                n += await self.traiter_record(msg.key, msg.value, ou)
            except Exception:
                log.exception("team agent failed on %s", ou)
            if n >= lots.TAILLE:
                await self.acquitter()
                n = 0
        await self.acquitter()

    async def acquitter(self) -> None:
        """The caseloads changed so far, then every Affectation's ack. Never raises."""
        try:
            await self.publier_charges()
        except Exception:
            log.exception("team agent could not publish this batch's caseloads (next batch will)")
        envois, self._envois = self._envois, []
        for erreur in await lots.acquittements(envois):
            if erreur is not None:
                log.error("an affectation was not acknowledged: %r", erreur)

    async def _nouveau(self, equipe: str, m: dict[str, Any]) -> None:
        aff = Affectation.model_validate(m["aff"])
        sid, sauts = aff.signalement_id, m.get("sauts", 0)
        deja = self.topo.dossiers.get(sid)
        if deja and deja["sequence"] >= aff.sequence:
            await self.renvoyer(deja)  # redelivered: already placed
            return
        cle_assure = f"{equipe}|{aff.nir_pseudonyme}"
        ouvert = self.topo.assures_equipe.get(cle_assure)
        if ouvert and not m.get("deborde_de"):
            if "dossier" in ouvert and ouvert["dossier"] != sid:
                d = self.topo.dossiers.get(ouvert["dossier"])
                if d and d["equipe"] == equipe:
                    qui = d["assistant"] or "la file de l’équipe"
                    lie = aff.model_copy(update={
                        "equipe": equipe, "assistant": d["assistant"], "file": d["file"], "dossier_id": ouvert["dossier"],
                        "explication": f"{aff.explication.rstrip('.')} ; rattaché au dossier ouvert de l’assuré, suivi par {qui} (référent unique).",
                    })
                    await self.emettre(lie)
                    self.enregistrer(lie, aff.explication, lie_a=ouvert["dossier"])
                    return
            if "transfere" in ouvert and sauts < MAX_SAUTS:
                await self.transmettre(ouvert["transfere"], {**m, "sauts": sauts + 1})
                return
        territoire = m.get("territoire") or equipe
        if territoire != equipe and not m.get("deborde_de") and sauts < MAX_SAUTS:
            await self.transmettre(territoire, {**m, "sauts": sauts + 1})
            return
        if not m.get("placer", True):
            final = aff.model_copy(update={"equipe": equipe})
            await self.emettre(final)
            self.enregistrer(final, aff.explication, special=True)
            self.topo.assures_equipe[cle_assure] = {"dossier": sid}
            return
        p = placer(self.config.moteur, equipe, aff.axe, self.charge(equipe), deja_deborde=bool(m.get("deborde_de")))
        if p.deborder_vers:
            self.topo.assures_equipe[cle_assure] = {"transfere": p.deborder_vers}
            if self.pleine_ici(p.deborder_vers, aff.axe):
                # What the neighbour would answer ("attendre"), without the two hops there and back.
                await self._attendre(equipe, {**m, "raison": f"{p.raison}, pleine aussi"})
                return
            await self.transmettre(p.deborder_vers, {**m, "deborde_de": equipe, "raison_debordement": p.raison})
            return
        if p.assistant is None and m.get("deborde_de"):
            # The neighbour is full too: the signalement waits in its own territory's file.
            await self.transmettre(m["deborde_de"], {**m, "kind": "attendre", "raison": f"{m['raison_debordement']}, pleine aussi"})
            return
        await self.placer_et_emettre(equipe, aff, p, reorientation=m.get("reorientation"),
                                     deborde_de=m.get("deborde_de"), raison_debordement=m.get("raison_debordement"))

    async def placer_et_emettre(self, equipe: str, aff: Affectation, p: Placement, reorientation: str | None = None,
                                deborde_de: str | None = None, raison_debordement: str | None = None) -> None:
        base = aff.explication
        if deborde_de:
            p = Placement(p.equipe, p.assistant, raison=f"{raison_debordement} : {p.raison}")
        changes: dict[str, Any] = {}
        if deborde_de:
            changes["file_precedente"] = nom_file(deborde_de, aff.axe)
        final = avec_placement(aff, p, **changes)
        await self.emettre(final)
        if final.assistant:
            self.changer_charge(equipe, final.assistant, +1)
        self.enregistrer(final, base, reorientation=reorientation)
        self.topo.assures_equipe[f"{equipe}|{aff.nir_pseudonyme}"] = {"dossier": aff.signalement_id}

    def pleine_ici(self, voisine: str, axe: Axe) -> bool:
        """The neighbour team is full for ``axe``, read on this worker: only when its partition is
        ours (its caseloads are then up to date here). Full teams send most overflows straight
        back ("attendre"): in saturation this saves two of a signalement's three team hops."""
        if not self.est_locale(voisine):
            return False
        p = placer(self.config.moteur, voisine, axe, self.charge(voisine), deja_deborde=True)
        return p.assistant is None

    def est_locale(self, equipe: str) -> bool:
        topic = self.topo.equipes
        app = getattr(topic, "app", None)
        if app is None:  # tests' stand-in topology: every team is here
            return True
        if self._locales is None:  # read once per assignment (oublier_cache runs on each rebalance)
            nom = topic.get_topic_name()
            self._locales = frozenset(tp.partition for tp in app.consumer.assignment() if tp.topic == nom)
        n = app.conf.topic_partitions
        return partition_de(equipe.encode(), n) in self._locales

    async def _attendre(self, equipe: str, m: dict[str, Any]) -> None:
        aff = Affectation.model_validate(m["aff"])
        deja = self.topo.dossiers.get(aff.signalement_id)
        if deja and deja["sequence"] >= aff.sequence:
            await self.renvoyer(deja)  # redelivered
            return
        # A case may have closed here while the signalement was at the neighbour's: look again.
        p = placer(self.config.moteur, equipe, aff.axe, self.charge(equipe), deja_deborde=True)
        if p.assistant:
            p = Placement(equipe, p.assistant, raison=f"{m['raison']} ; de retour, {p.raison}")
        else:
            p = Placement(equipe, raison=f"{m['raison']} ; le signalement attend dans la file de {equipe}")
        await self.placer_et_emettre(equipe, aff, p)

    async def _liberer(self, equipe: str, m: dict[str, Any]) -> None:
        d = await self.retirer(equipe, m["sid"])
        if d is not None:
            await self.remplir(equipe)

    async def retirer(self, equipe: str, sid: str) -> dict[str, Any] | None:
        """Close a case in this team: its caseworker has one case less. None if it is not here."""
        d = self.topo.dossiers.get(sid)
        if not d or d["equipe"] != equipe:
            log.warning("suivi for a signalement that team %s does not hold", equipe)
            return None
        del self.topo.dossiers[sid]
        self.files().retirer(equipe, sid)
        if d["assistant"] and not d["lie_a"]:
            self.changer_charge(equipe, d["assistant"], -1)
        nir = d["aff"]["nir_pseudonyme"]
        cle = f"{equipe}|{nir}"
        if (self.topo.assures_equipe.get(cle) or {}).get("dossier") == sid:
            del self.topo.assures_equipe[cle]
        return d

    async def remplir(self, equipe: str) -> None:
        """Give waiting work, most urgent (with ageing) then oldest first, to caseworkers with room."""
        m = self.config.moteur
        eq = m.equipes.get(equipe)
        if eq is None:
            return
        maintenant = datetime.now(UTC)
        bloques: set[str] = set()
        for item in self.files().en_ordre(equipe, maintenant, m.config.vieillissement.jours_par_niveau):
            d = self.topo.dossiers.get(item.signalement_id)
            if not d:  # the index is a cache: never place what the table no longer holds
                self._files.retirer(equipe, item.signalement_id)
                continue
            axe = Axe(d["axe"])
            if axe.value in bloques:
                continue
            choix = choisir_assistant(eq, axe, self.charge(equipe))
            if choix is None:
                bloques.add(axe.value)
                if len(bloques) == 2:
                    return
                continue
            a, libre = choix
            base = Affectation.model_validate(d["aff"]).model_copy(update={"explication": d["base"]})
            p = Placement(equipe, a.id, raison=(
                f"attribué à {a.id} après {max(0, (maintenant - item.recu_le).days)} jours d’attente, "
                f"compétence {axe.value}, le plus de place ({libre} sur {a.capacite})"
            ))
            final = avec_placement(base, p, file=d["file"], sequence=d["sequence"] + 1, nature="attribution",
                                   decide_le=maintenant, config_version=m.version)
            await self.emettre(final)
            self.changer_charge(equipe, a.id, +1)
            self.enregistrer(final, d["base"])

    async def _reorienter(self, equipe: str, m: dict[str, Any]) -> None:
        d = self.topo.dossiers.get(m["sid"])
        if not d or d.get("reorientation") == m["suivi_id"]:
            return  # redelivered, or not held here
        d = await self.retirer(equipe, m["sid"])
        if d is None:
            return
        await self.remplir(equipe)
        ancienne = Affectation.model_validate(d["aff"])
        nouvelle = reorientation(ancienne, m["vers"], m["quand"], self.config.moteur.version, m.get("assistant"))
        await self.transmettre(nouvelle.equipe or equipe, {
            "kind": "nouveau", "aff": nouvelle.model_dump(mode="json"), "placer": True,
            "territoire": nouvelle.equipe, "reorientation": m["suivi_id"], "deborde_de": None,
        })

    async def _escalade(self, equipe: str, m: dict[str, Any]) -> None:
        d = self.topo.dossiers.get(m["sid"])
        if not d or d["equipe"] != equipe:
            return
        aff = Affectation.model_validate(d["aff"])
        if aff.echeance_premier_contact.isoformat() != m["echeance"]:
            return  # already escalated for this breach
        final = escalade(aff, self.config.moteur)
        await self.emettre(final)
        self.enregistrer(final, d["base"], special=d["special"], lie_a=d["lie_a"], reorientation=d["reorientation"])
        self.topo.escalades[equipe] += 1
        await self.publier("escalades-premier-contact", {"equipe": equipe}, self.topo.escalades[equipe])

    async def transmettre(self, equipe: str, m: dict[str, Any]) -> None:
        await self.topo.equipes.send(key=equipe.encode(), value=demande(**m))


def reorientation(ancienne: Affectation, vers: str, quand: str, version: str, assistant: str | None) -> Affectation:
    """The new base decision after a caseworker's réorientation (``axe:X`` or ``equipe:Y``)."""
    genre, _, cible = vers.partition(":")
    axe = Axe(cible) if genre == "axe" else ancienne.axe
    equipe = cible if genre == "equipe" else ancienne.equipe
    qui = assistant or "l’équipe"
    return ancienne.model_copy(update={
        "sequence": ancienne.sequence + 1, "nature": "reorientation", "axe": axe, "equipe": equipe, "dossier_id": None,
        "assistant": None, "file": nom_file(equipe, axe) if equipe else ancienne.file, "file_precedente": ancienne.file,
        "regle": "reorientation", "config_version": version, "decide_le": datetime.now(UTC),
        "explication": f"Réorientation par {qui} le {quand[:10]} depuis la file {ancienne.file} vers {vers} (configuration {version})",
    })


def escalade(aff: Affectation, moteur: Any) -> Affectation:
    e = moteur.config.escalade
    p = prio.escalader(aff.priorite, e.hausse_priorite)
    echeance = datetime.now(UTC).date() + timedelta(days=e.nouveau_delai_jours)
    explication = (
        f"Escalade : aucun premier contact à l’échéance du {aff.echeance_premier_contact:%d/%m/%Y}, "
        f"priorité relevée de {aff.priorite} à {p}, nouvelle échéance le {echeance:%d/%m/%Y} "
        f"(configuration {moteur.version}) ; reste dans la file {aff.file}"
        + (f" chez {aff.assistant}" if aff.assistant else "") + "."
    )
    return aff.model_copy(update={
        "sequence": aff.sequence + 1, "nature": "escalade", "priorite": p, "echeance_premier_contact": echeance,
        "regle": "echeance-premier-contact", "config_version": moteur.version, "explication": explication,
        "decide_le": datetime.now(UTC),
    })


def install(topo: Topology, equipes: Equipes) -> None:
    topo.app.on_partitions_revoked.connect(equipes.oublier_cache)
    topo.app.on_partitions_assigned.connect(equipes.oublier_cache)

    @topo.app.agent(topo.equipes, name="equipes", concurrency=1)
    async def equipes_agent(stream: faust.StreamT) -> None:
        async for events in lots.par_lots_de_paquets(stream):
            await equipes.traiter_lot(events)
