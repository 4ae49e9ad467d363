"""Batch files (``aiguillage ingest SOURCE FILE``): streamed, pipelined, resumable.

- The file is read line by line (a CSV extract is never held whole in memory);
  for formats that are one document per file (JSON, XML) the file is one body.
- Records are sent without awaiting each ack: up to ``fenetre`` sends are in
  flight, then the window is awaited as a whole. A checkpoint is written after
  each acknowledged window.
- Rerun: ids are deterministic and the stream deduplicates, so a rerun could
  never route twice; on top of that the checkpoint (``<data_dir>/ingest/``, one
  small file per file *content*, keyed by its SHA-256) makes a rerun skip every
  line already acknowledged, so it publishes nothing twice: constant memory,
  and a run stopped half-way (broker lost, Ctrl-C) resumes where it stopped.
- Every refused line goes to ``signalements.rejetes`` (stage ``batch``) with its
  line number; its payload is the header plus that line (``Rejet.brut``), so
  ``dlq replay`` can read it again as a one-row file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from aiguillage import metrics, topics
from aiguillage.codec import AvroCodec
from aiguillage.dlq import Rejet, dead_letter
from aiguillage.domain import Signalement, Source
from aiguillage.kafka import BrokerIndisponible, producer_config
from connectors.base import Lu
from connectors.registry import CONNECTORS

DETAILS_MAX = 10_000  # rejected lines listed one by one in the summary; the DLQ has them all


@dataclass
class IngestSummary:
    lus: int = 0
    publies: int = 0
    deja_traites: int = 0  # lines acknowledged by an earlier run of the same file, skipped
    rejetes: int = 0
    rejetes_avant: int = 0  # lines of this file rejected by earlier runs (already in the DLQ)
    details: list[tuple[int | None, str, str]] = field(default_factory=list)
    fichier_refuse: bool = False

    def rejeter(self, rejet: Rejet) -> None:
        self.rejetes += 1
        if len(self.details) < DETAILS_MAX:
            self.details.append((rejet.ligne, rejet.code, rejet.reason))


def empreinte(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for bloc in iter(lambda: f.read(1 << 20), b""):
            h.update(bloc)
    return h.hexdigest()


class _Lignes:
    """Iterates a binary file's lines, reporting progress in bytes."""

    def __init__(self, f: IO[bytes], avancer: Callable[[int], None]) -> None:
        self.f, self.avancer = f, avancer
        self.courante = b""

    def __iter__(self) -> Iterator[bytes]:
        for brut in self.f:
            self.courante = brut
            self.avancer(len(brut))
            yield brut


@dataclass
class Ingestion:
    source: Source
    path: Path
    bootstrap: str
    cle_pseudonyme: bytes
    cle_dlq: bytes
    etat_dir: Path
    fenetre: int = 5_000
    force: bool = False
    codec: AvroCodec = field(default_factory=AvroCodec)

    def _etat(self) -> Path:
        return self.etat_dir / f"{self.source.value}-{empreinte(self.path)}.json"

    async def run(self, avancer: Callable[[int], None] = lambda n: None) -> IngestSummary:
        etat = self._etat()
        avant = {} if self.force or not etat.exists() else json.loads(etat.read_text())
        deja = int(avant.get("lignes", 0))
        connector = CONNECTORS[self.source]
        summary = IngestSummary(rejetes_avant=int(avant.get("rejetes", 0)))
        producer = AIOKafkaProducer(
            **producer_config(self.bootstrap, linger_ms=20, max_batch_size=512 * 1024, request_timeout_ms=30_000)
        )
        try:
            await asyncio.wait_for(producer.start(), 15)
        except (TimeoutError, KafkaError, OSError) as exc:
            await producer.stop()
            raise BrokerIndisponible(f"the broker does not answer: {type(exc).__name__}") from exc
        en_vol: list[asyncio.Future[Any]] = []
        derniere = deja
        recu_le = datetime.now(UTC)
        topic = topics.entrants(self.source)

        async def vider(jusqua: int) -> None:
            if en_vol:
                await asyncio.gather(*en_vol)
                en_vol.clear()
            self._sauver(etat, jusqua, summary.rejetes_avant + summary.rejetes)

        try:
            with self.path.open("rb") as f:
                lignes = _Lignes(f, avancer)
                document: bytes | None = None
                if hasattr(connector, "lignes"):
                    items: Iterator[Lu | Rejet] = connector.lignes(lignes)
                else:  # one document per file
                    document = b"".join(lignes)
                    items = connector.records(document)
                for item in items:
                    ligne = item.ligne
                    if ligne is not None and ligne <= deja:
                        summary.deja_traites += 1
                        continue
                    resultat = item if isinstance(item, Rejet) else connector.convertir(item, recu_le, self.cle_pseudonyme)
                    summary.lus += 1
                    if isinstance(resultat, Signalement):
                        value = self.codec.encode("Signalement", resultat.to_avro())
                        en_vol.append(await producer.send(topic, value=value, key=resultat.cle()))
                        summary.publies += 1
                        metrics.RECUS.labels(self.source.value, "lot").inc()
                    else:
                        if resultat.ligne is None:
                            resultat = replace(resultat, ligne=ligne)
                        summary.rejeter(resultat)
                        summary.fichier_refuse = summary.fichier_refuse or resultat.ligne in (None, 1)
                        dl = dead_letter(
                            self.cle_dlq, source=self.source.value, stage="batch", rejet=resultat,
                            payload=resultat.brut or document or lignes.courante,
                            content_type=connector.media_types[0],
                        )
                        en_vol.append(await producer.send(topics.REJETES, value=self.codec.encode("DeadLetter", dl)))
                        metrics.REJETES.labels(self.source.value, "batch", resultat.code).inc()
                        metrics.DLQ.labels(self.source.value, "batch", resultat.code).inc()
                    derniere = ligne or derniere
                    if len(en_vol) >= self.fenetre:
                        await vider(derniere)
                await vider(max(derniere, deja))
        except (KafkaError, OSError) as exc:
            raise BrokerIndisponible(f"the broker stopped acknowledging writes: {type(exc).__name__}") from exc
        finally:
            await producer.stop()
        return summary

    def _sauver(self, etat: Path, lignes: int, rejetes: int) -> None:
        etat.parent.mkdir(parents=True, exist_ok=True)
        tmp = etat.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fichier": str(self.path), "lignes": lignes, "rejetes": rejetes}))
        tmp.replace(etat)
