"""The ingress agent: Signalement -> validation -> dedup -> triage and territory -> team partition.

A thin adapter around :mod:`aiguillage.routing`. Every failure is caught per record
and dead-lettered (an exception escaping a Faust agent marks the message done and
loses it). ``concurrency=1``: output must not be lost (#606). State layout and the
reason for the hop to the team partition: :mod:`streams.etat`.
"""

from __future__ import annotations

import json
import logging
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
from streams.topology import Topology

log = logging.getLogger(__name__)


def demande(kind: str, **fields: Any) -> bytes:
    """A message to a team's partition (``<app>-equipes``): internal, JSON."""
    return json.dumps({"kind": kind, **fields}, default=str).encode()


class Routeur:
    def __init__(self, topo: Topology, codec: AvroCodec, dlq_key: bytes, config: ConfigCourante) -> None:
        self.topo = topo
        self.codec = codec
        self.dlq_key = dlq_key
        self.config = config

    def decoder(self, value: bytes | None) -> Signalement | Rejet:
        try:
            data = self.codec.decode("Signalement", value)
        except CodecError as exc:
            return Rejet(exc.code, str(exc))
        try:
            return Signalement.model_validate(data)
        except ValidationError as exc:
            return rejet_de_validation(exc)

    async def traiter(self, event: faust.types.EventT) -> None:
        msg = event.message
        s = self.decoder(msg.value)
        if isinstance(s, Signalement):  # direct Kafka producers: only their own source and ids
            s = verifier_provenance(s, msg.topic) or s
        if isinstance(s, Rejet):
            await self.rejeter(msg, s)
            return
        if self.topo.vus[s.signalement_id]:
            self.topo.vus[s.signalement_id] += 1
            return
        # Mark it seen only once what routing sent is acknowledged: the mark (changelog) and the
        # output go to different partitions and may be delivered in either order, and a crash
        # between the two would leave a signalement marked seen that was never routed.
        await self.router(s)
        self.topo.vus[s.signalement_id] = 1

    async def router(self, s: Signalement) -> None:
        o = orienter(self.config.moteur, s, datetime.now(UTC))
        aff = o.affectation
        if aff.equipe is None:
            # No team (unknown territory): nothing to balance, the visible queue gets it now.
            await (await self.topo.affectations.send(key=aff.cle(), value=self.codec.encode("Affectation", aff.to_avro())))
        else:
            # Référent unique: go first to the team of the assuré's last case, which may hold it open.
            dernier = self.topo.assures.get(s.nir_pseudonyme)
            cible = dernier["equipe"] if dernier else aff.equipe
            envoi = await self.topo.equipes.send(
                key=cible.encode(),
                value=demande("nouveau", aff=aff.model_dump(mode="json"), placer=o.a_placer, territoire=aff.equipe),
            )
            await envoi  # acknowledged before the caller marks the signalement seen
            if not dernier:
                self.topo.assures[s.nir_pseudonyme] = {"equipe": aff.equipe}

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


def install(topo: Topology, routeur: Routeur) -> None:
    @topo.app.agent(topo.entrants, name="routage", concurrency=1)
    async def routage_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            try:
                await routeur.traiter(event)
            except Exception as exc:
                log.exception("routing failed on %s[%d]@%d", event.message.topic, event.message.partition, event.message.offset)
                await routeur.rejeter(event.message, Rejet("erreur-interne", f"routing failed: {type(exc).__name__}"))

    @topo.app.timer(interval=2.0, name="routing-config-reload")
    async def recharger() -> None:
        routeur.config.verifier()
