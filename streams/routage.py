"""The ingress agent: Signalement -> validation -> dedup -> triage and territory -> team partition.

A thin adapter around :mod:`aiguillage.routing`. Every failure is caught per record
and dead-lettered (an exception escaping a Faust agent marks the message done and
loses it). ``concurrency=1``: output must not be lost (#606). State layout and the
reason for the hop to the team partition: :mod:`streams.etat`.

Records come in batches (:mod:`streams.lots`): a batch's outputs are sent, their acks
awaited together, and only then are its signalements marked seen.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import faust
from pydantic import ValidationError

from aiguillage.codec import AvroCodec, CodecError
from aiguillage.dlq import Rejet, dead_letter
from aiguillage.domain import Signalement
from aiguillage.routing.affectation import orienter
from aiguillage.routing.rechargement import ConfigCourante
from connectors.base import rejet_de_validation, verifier_provenance
from streams import lots
from streams.topology import Topology

log = logging.getLogger(__name__)
VUS_PAR_ASSURE = 50  # signalement ids kept per assuré for dedup (a resend has the same id)


def demande(kind: str, **fields: Any) -> bytes:
    """A message to a team's partition (``<app>-equipes``): internal, JSON."""
    return json.dumps({"kind": kind, **fields}, default=str).encode()


def lot_de_demandes(messages: list[tuple[str, dict[str, Any]]]) -> bytes:
    """Messages to several teams of one partition, as one record: ``{"lot": [[team, message], ...]}``."""
    return json.dumps({"lot": messages}, default=str).encode()


class Routeur:
    def __init__(self, topo: Topology, codec: AvroCodec, dlq_key: bytes, config: ConfigCourante) -> None:
        self.topo = topo
        self.codec = codec
        self.dlq_key = dlq_key
        self.config = config
        # This batch's team hints, by assuré: written with the batch's marks (one record each).
        self._indices: dict[str, tuple[faust.types.EventT | None, str]] = {}
        # This batch's messages to the teams, one record per partition (sent before the acks are awaited).
        self._vers_equipes = lots.Paquets(topo.app.conf.topic_partitions)

    def decoder(self, value: bytes | None) -> Signalement | Rejet:
        try:
            data = self.codec.decode("Signalement", value)
        except CodecError as exc:
            return Rejet(exc.code, str(exc))
        try:
            return Signalement.model_validate(data)
        except ValidationError as exc:
            return rejet_de_validation(exc)

    async def traiter_lot(self, events: list[faust.types.EventT]) -> None:
        """Route a batch. Never raises: whatever fails is dead-lettered."""
        envois: list[tuple[faust.types.EventT, Signalement, Awaitable[Any] | lots.Paquet]] = []
        dans_le_lot: set[str] = set()
        for event in events:
            lots.pour(event)
            try:
                envoi = await self.traiter(event, dans_le_lot)
            except Exception as exc:  # noqa: BLE001 - per record: a raise would ack the rest of the batch
                await self.echec(event, exc)
                continue
            if envoi is not None:
                envois.append(envoi)
        await self.envoyer_aux_equipes()
        # Mark them seen only once what routing sent is acknowledged: the mark (changelog) and
        # the output go to different partitions and may be delivered in either order, and a
        # crash between the two would leave a signalement marked seen that was never routed.
        erreurs = await lots.acquittements([_ack(fut) for _, _, fut in envois])
        vus: dict[str, list[str]] = {}  # assuré -> signalement ids routed in this batch
        ou: dict[str, faust.types.EventT] = {}  # assuré -> an event of theirs, to log the record under
        for (event, s, _), erreur in zip(envois, erreurs, strict=True):
            if erreur is not None:
                await self.echec(event, erreur)
                continue
            vus.setdefault(s.nir_pseudonyme, []).append(s.signalement_id)
            ou[s.nir_pseudonyme] = event
        indices, self._indices = self._indices, {}
        for nir, (event, _) in indices.items():
            if event is not None:
                ou.setdefault(nir, event)
        # One changelog record per assuré and batch: the team hint and the ids seen, together.
        for nir, event in ou.items():
            lots.pour(event)
            try:
                self.retenir(nir, indices.get(nir, (None, None))[1], vus.get(nir, []))
            except Exception as exc:  # noqa: BLE001 - as above
                await self.echec(event, exc)

    async def envoyer_aux_equipes(self) -> None:
        """The batch's packets of team messages. Never raises: a packet not sent has no ack,
        so its signalements are dead-lettered by :meth:`traiter_lot`."""
        try:
            await self._vers_equipes.envoyer(self.topo.equipes, lot_de_demandes)
        except Exception:
            log.exception("routing could not send this batch's messages to the teams")

    def retenir(self, nir: str, equipe: str | None, vus: list[str]) -> None:
        avant = self.topo.assures.get(nir) or {}
        apres = {"equipe": avant.get("equipe") or equipe, "vus": [*avant.get("vus", []), *vus][-VUS_PAR_ASSURE:]}
        if apres != avant:
            self.topo.assures[nir] = apres

    def deja_vu(self, s: Signalement) -> bool:
        return s.signalement_id in (self.topo.assures.get(s.nir_pseudonyme) or {}).get("vus", ())

    async def traiter(
        self, event: faust.types.EventT, dans_le_lot: set[str]
    ) -> tuple[faust.types.EventT, Signalement, Awaitable[Any]] | None:
        """Validate, dedup and route one record; the pending send to await, if any."""
        msg = event.message
        s = self.decoder(msg.value)
        if isinstance(s, Signalement):  # direct Kafka producers: only their own source and ids
            s = verifier_provenance(s, msg.topic) or s
        if isinstance(s, Rejet):
            await self.rejeter(msg, s)
            return None
        if s.signalement_id in dans_le_lot or self.deja_vu(s):
            return None  # a resend: already routed
        dans_le_lot.add(s.signalement_id)
        return event, s, await self.router(s, event)

    async def router(self, s: Signalement, event: faust.types.EventT | None = None) -> Awaitable[Any] | lots.Paquet:
        """Send the routing decision on: the broker's ack to await before marking it done, or the
        packet of team messages it joined (sent at the end of the batch: :meth:`traiter_lot`)."""
        o = orienter(self.config.moteur, s, datetime.now(UTC))
        aff = o.affectation
        if aff.equipe is None:
            # No team (unknown territory): nothing to balance, the visible queue gets it now.
            return await self.topo.affectations.send(key=aff.cle(), value=self.codec.encode("Affectation", aff.to_avro()))
        # Référent unique: go first to the team of the assuré's last case, which may hold it open.
        nir = s.nir_pseudonyme
        dernier = (self.topo.assures.get(nir) or {}).get("equipe") or self._indices.get(nir, (None, None))[1]
        equipe = dernier or aff.equipe
        envoi = self._vers_equipes.ajouter(equipe.encode(), [equipe, {
            "kind": "nouveau", "aff": aff.model_dump(mode="json"), "placer": o.a_placer, "territoire": aff.equipe,
        }])
        if not dernier:  # a hint only, kept for the rest of the batch and written with the marks
            self._indices[nir] = (event, aff.equipe)
        return envoi

    async def echec(self, event: faust.types.EventT, exc: BaseException) -> None:
        m = event.message
        log.error("routing failed on %s[%d]@%d: %r", m.topic, m.partition, m.offset, exc)
        try:
            await self.rejeter(m, Rejet("erreur-interne", f"routing failed: {type(exc).__name__}"))
        except Exception:  # the batch must go on: a raise would ack the records not yet handled
            log.exception("could not dead-letter %s[%d]@%d", m.topic, m.partition, m.offset)

    async def rejeter(self, msg: Any, rejet: Rejet, stage: str = "stream") -> None:
        source = msg.topic.rsplit(".", 1)[-1]
        dl = dead_letter(
            self.dlq_key,
            source=source,
            stage=stage,
            rejet=rejet,
            payload=msg.value or b"",
            original_key=msg.key,
            original_topic=msg.topic,
            original_partition=msg.partition,
            original_offset=msg.offset,
        )
        log.warning("rejected %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, rejet.reason)
        await self.topo.rejetes.send(key=msg.key, value=self.codec.encode("DeadLetter", dl))


def _ack(envoi: Awaitable[Any] | lots.Paquet) -> Awaitable[Any]:
    if isinstance(envoi, lots.Paquet):
        return envoi.envoi if envoi.envoi is not None else _jamais_envoye()
    return envoi


async def _jamais_envoye() -> None:
    raise RuntimeError("its packet of team messages was not sent")


def install(topo: Topology, routeur: Routeur) -> None:
    @topo.app.agent(topo.entrants, name="routage", concurrency=1)
    async def routage_agent(stream: faust.StreamT) -> None:
        async for events in lots.par_lots(stream):
            await routeur.traiter_lot(events)

    @topo.app.timer(interval=2.0, name="routing-config-reload")
    async def recharger() -> None:
        routeur.config.verifier()
