"""The agents' dead letters: what a stage cannot process goes to ``signalements.rejetes``, acked.

One helper for every agent, so that a rejection always carries its source, stage, code and
reason in clear and its payload encrypted (``aiguillage.dlq``), and is sent with the batch's
other outputs (:class:`streams.batches.Envois`): a dead letter that cannot be sent either stops
the batch from being acknowledged (:class:`streams.batches.EnvoiImpossible`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiguillage import metrics
from aiguillage.codec import AvroCodec
from aiguillage.dlq import Rejet, dead_letter
from streams import batches

log = logging.getLogger(__name__)


class Origine:
    """What an output came from when it is not a whole record: one message of a record (the team
    agent's packets). Its payload is made only if it is dead-lettered, not for every message."""

    __slots__ = ("_payload", "msg", "source")

    def __init__(self, msg: Any, payload: Callable[[], bytes], source: str | None) -> None:
        self.msg, self._payload, self.source = msg, payload, source

    @property
    def payload(self) -> bytes:
        return self._payload()


class DeadLetters:
    def __init__(self, topic: Any, codec: AvroCodec, key: bytes, renvoi_s: float = 30.0) -> None:
        self.topic = topic
        self.codec = codec
        self.key = key
        self.renvoi_s = renvoi_s  # how long the agents try a failed send again, before a dead letter

    def envois(self) -> batches.Envois:
        """A batch's sends, tried again as long as this says."""
        return batches.Envois(self.renvoi_s)

    def lettre(self, msg: Any, rejet: Rejet, stage: str, source: str | None = None, payload: bytes | None = None) -> bytes:
        """The DeadLetter of a record (``msg``: its Kafka message) refused at ``stage``."""
        topic = msg.topic if msg is not None else ""
        dl = dead_letter(
            self.key, source=source or topic.rsplit(".", 1)[-1], stage=stage, rejet=rejet,
            payload=payload if payload is not None else (msg.value or b"" if msg is not None else b""),
            original_key=msg.key if msg is not None else None, original_topic=topic or None,
            original_partition=msg.partition if msg is not None else None,
            original_offset=msg.offset if msg is not None else None,
        )
        return self.codec.encode("DeadLetter", dl)

    async def envoyer(self, envois: batches.Envois, msg: Any, rejet: Rejet, stage: str, source: str | None = None,
                      payload: bytes | None = None) -> None:
        where = f"{msg.topic}[{msg.partition}]@{msg.offset}" if msg is not None else stage
        log.warning("rejected %s at %s: %s", where, stage, rejet.reason,
                    extra={"topic": getattr(msg, "topic", None), "partition": getattr(msg, "partition", None),
                           "offset": getattr(msg, "offset", None), "code": rejet.code})
        origine = source or (msg.topic.rsplit(".", 1)[-1] if msg is not None and msg.topic.startswith("signalements.")
                             else "interne")
        metrics.DLQ.labels(origine, stage, rejet.code).inc()
        metrics.REJETES.labels(origine, stage, rejet.code).inc()
        await envois.envoyer(self.topic, self.lettre(msg, rejet, stage, source, payload),
                             key=msg.key if msg is not None else None)

    async def apres_echecs(self, envois: batches.Envois, echecs: list[tuple[Any, BaseException]], stage: str) -> None:
        """The origins of sends that failed for good, dead-lettered in their turn (acked here);
        if that fails too, :class:`streams.batches.EnvoiImpossible`: the batch is not acknowledged."""
        if not echecs:
            return
        vus: set[int] = set()
        for origine, erreur in batches.origines(echecs):
            if id(origine) in vus:
                continue
            vus.add(id(origine))
            msg, payload, source = ((origine.msg, origine.payload, origine.source) if isinstance(origine, Origine)
                                    else (origine, None, None))
            rejet = Rejet("envoi-impossible", f"an output of this record was never acknowledged: {type(erreur).__name__}")
            await self.envoyer(envois, msg, rejet, stage, source, payload)
        if await envois.confirmer():
            raise batches.EnvoiImpossible(f"{stage}: outputs and their dead letters were refused by the broker")
