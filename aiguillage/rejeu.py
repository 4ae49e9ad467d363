"""The dead-letter topic, read back: list the reasons, and replay what can now pass.

Replay decrypts each payload and runs it again through what refused it: the
partner's connector (stages ``gateway`` and ``batch``) or the stream's decoding
and validation (stage ``stream``). What passes is re-injected on the ingress
topic; what still fails is reported, and not dead-lettered a second time.
Replaying twice is harmless: ids are deterministic and the stream deduplicates.

A record an inner stage could not process or whose outputs were never acknowledged (stages
``equipes``, ``cycle``, ``agregats``) goes back to the topic it was read from: a team's
message keyed by its team (so to the team's partition), the others as they were. Those stages
are idempotent: a team message finds its case recorded and sends its Affectation again.
The sinks' stages are not replayed here: a sink re-reads its own topic.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from aiguillage import topics
from aiguillage.codec import AvroCodec, CodecError
from aiguillage.dlq import Rejet, dechiffrer
from aiguillage.domain import Signalement, Source
from aiguillage.kafka import Publieur
from aiguillage.routing import messages
from connectors.base import rejet_de_validation, verifier_provenance
from connectors.registry import CONNECTORS


async def lire_rejets(bootstrap: str, idle: float = 1.0, codec: AvroCodec | None = None) -> list[dict[str, Any]]:
    """Every DeadLetter on ``signalements.rejetes``, oldest first per partition.

    Reads until the topic is idle: the embedded broker's ListOffsets(latest) is
    not trusted (DESIGN.md), a fetch that returns nothing is.
    """
    codec = codec or AvroCodec()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        parts = consumer.partitions_for_topic(topics.REJETES) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topics.REJETES) or set()
        consumer.assign([TopicPartition(topics.REJETES, p) for p in parts])
        await consumer.seek_to_beginning()
        while batch := await consumer.getmany(timeout_ms=int(idle * 1000), max_records=5000):
            for records in batch.values():
                for rec in records:
                    try:
                        out.append(codec.decode("DeadLetter", rec.value))
                    except CodecError:
                        continue  # not a DeadLetter: nothing this tool can show or replay
    finally:
        await consumer.stop()
    return out


def filtrer(rejets: Iterable[dict[str, Any]], source: str | None = None, stage: str | None = None,
            code: str | None = None) -> list[dict[str, Any]]:
    return [
        d for d in rejets
        if (source is None or d["source"] == source)
        and (stage is None or d["stage"] == stage)
        and (code is None or d["error_code"] == code)
    ]


def compter(rejets: Iterable[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    return Counter((d["source"], d["stage"], d["error_code"]) for d in rejets)


@dataclass
class Rejeu:
    reinjectes: list[str] = field(default_factory=list)  # signalement_ids
    echecs: list[tuple[dict[str, Any], Rejet]] = field(default_factory=list)
    ignores: list[dict[str, Any]] = field(default_factory=list)
    internes: int = 0  # records of an inner stage sent back to their topic


INTERNES = ("equipes", "cycle", "agregats")  # the worker's inner stages (streams/teams.py, lifecycle, figures)


async def _rejouer_interne(d: dict[str, Any], payload: bytes, publieur: Publieur, bilan: Rejeu,
                           app_id: str | None) -> None:
    topic = d["original_topic"]
    if d["stage"] == "cycle" and topic == topics.AFFECTATIONS and app_id:
        # Dead-lettered when the life cycle still read ``affectations``: it now reads them from its own topic.
        topic = topics.affectations_du_cycle(app_id)
    if d["stage"] != "equipes":
        await publieur.send_raw(topic, payload, d["original_key"])
        bilan.internes += 1
        return
    try:
        recus = messages.decoder(d["original_key"], payload)
    except (ValidationError, ValueError) as exc:
        bilan.echecs.append((d, Rejet("message-invalide", f"{type(exc).__name__}: {exc}"[:500])))
        return
    for equipe, m in recus:
        await publieur.send_raw(topic, messages.encoder(m), equipe.encode())
        bilan.internes += 1


def _relire_flux(codec: AvroCodec, payload: bytes, topic: str) -> Signalement | Rejet:
    """What the routing agent does before routing: decode, validate, check provenance."""
    try:
        s = Signalement.model_validate(codec.decode("Signalement", payload))
    except CodecError as exc:
        return Rejet(exc.code, str(exc))
    except ValidationError as exc:
        return rejet_de_validation(exc)
    return verifier_provenance(s, topic) or s


async def rejouer(rejets: list[dict[str, Any]], publieur: Publieur, cle_dlq: bytes, cle_pseudonyme: bytes,
                  app_id: str | None = None) -> Rejeu:
    """``app_id``: the worker's (``AIGUILLAGE_WORKER_ID``), whose internal topics some inner records go back to."""
    bilan = Rejeu()
    for d in rejets:
        try:
            payload = dechiffrer(cle_dlq, d["payload_chiffre"])
        except Exception:  # noqa: BLE001 - InvalidTag: written with another key
            bilan.echecs.append((d, Rejet("dlq-cle", "the payload cannot be decrypted with AIGUILLAGE_DLQ_KEY")))
            continue
        if d["stage"] == "stream":
            topic = d["original_topic"] or topics.entrants(d["source"])
            s = _relire_flux(publieur.codec, payload, topic)
            if isinstance(s, Rejet):
                bilan.echecs.append((d, s))
                continue
            await publieur.send_raw(topic, payload, d["original_key"])
            bilan.reinjectes.append(s.signalement_id)
        elif d["stage"] in ("gateway", "batch") and d["source"] in {s.value for s in Source}:
            connector = CONNECTORS[Source(d["source"])]
            for item in connector.lire(payload, d["rejete_le"], cle_pseudonyme):
                if isinstance(item, Rejet):
                    ligne = d["ligne"] if d["ligne"] is not None else item.ligne  # the original file's line
                    bilan.echecs.append((d, Rejet(item.code, item.reason, item.fields, ligne)))
                else:
                    await publieur.send(topics.entrants(item.source), "Signalement", item.to_avro(), key=item.cle())
                    bilan.reinjectes.append(item.signalement_id)
        elif d["stage"] in INTERNES and d["original_topic"]:
            await _rejouer_interne(d, payload, publieur, bilan, app_id)
        else:
            bilan.ignores.append(d)  # sink stages: the sink re-reads its own topic
    return bilan


def lire(bootstrap: str) -> list[dict[str, Any]]:
    return asyncio.run(lire_rejets(bootstrap))
