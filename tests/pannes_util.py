"""Helpers of the fault tests: an isolated broker and hub, fast bulk producers, SQL polling, a TCP
proxy that can be cut. Real processes, real broker, real databases: nothing is mocked."""

from __future__ import annotations

import asyncio
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from aiguillage import topics
from aiguillage.broker import EmbeddedBroker, free_port
from aiguillage.codec import AvroCodec
from aiguillage.domain import Source, signalement_id
from aiguillage.kafka_local import LocalKafka
from aiguillage.runtime import Hub, child_env
from tests.conftest import SESSION_TIMEOUT

CODEC = AvroCodec()


def signalement(source: Source, ref: str, nir_pseudonyme: str) -> dict:
    """A canonical Signalement as a connector publishes it (Avro dict)."""
    return {
        "signalement_id": signalement_id(source, ref), "source": source.value, "source_ref": ref,
        "recu_le": datetime.now(UTC), "nir_pseudonyme": nir_pseudonyme, "annee_naissance": 1975,
        "tranche_age": None, "sexe": "F", "code_postal": "31000", "commune_insee": "31555",
        "departement": "31", "situation": "salarie", "risque": "maladie", "arret_debut": None,
        "arret_jours": None, "motif": "acces-aux-soins", "axe_suggere": None, "consentement": True,
        "commentaire": None,
    }


def signalements(n: int, prefix: str | None = None) -> list[dict]:
    prefix = prefix or uuid.uuid4().hex[:8]
    sources = list(Source)
    return [signalement(sources[i % len(sources)], f"{prefix}-{i}", secrets.token_hex(32)) for i in range(n)]


def affectation(sid: str, departement: str = "31") -> dict:
    """An Affectation as the worker publishes it (Avro dict), for the sink-only tests."""
    now = datetime.now(UTC)
    return {
        "signalement_id": sid, "sequence": 0, "nature": "initiale", "source": "cpam",
        "source_ref": f"REF-{sid[:8]}", "nir_pseudonyme": "ab" * 32, "recu_le": now,
        "departement": departement, "file": f"{departement}-SPS", "equipe": None, "axe": "SPS",
        "priorite": 3, "assistant": None, "regle": "test", "config_version": "test",
        "explication": "test", "echeance_premier_contact": date(2026, 12, 3), "decide_le": now,
    }


async def _produce(bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes, int | None]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
        linger_ms=20, max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        futures = [await producer.send(t, value=v, key=k, partition=p) for t, k, v, p in records]
        await producer.flush()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def produire(bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes, int | None]]) -> None:
    """Send (topic, key, value, partition) records in big batches and wait for every ack."""
    asyncio.run(_produce(bootstrap, records))


def produire_signalements(bootstrap: str, items: list[dict]) -> None:
    produire(bootstrap, (
        (topics.entrants(s["source"]), s["nir_pseudonyme"].encode(), CODEC.encode("Signalement", s), None)
        for s in items
    ))


def produire_affectations(bootstrap: str, ids: list[str]) -> None:
    produire(bootstrap, (
        (topics.AFFECTATIONS, sid.encode(), CODEC.encode("Affectation", affectation(sid)), None) for sid in ids
    ))


def ids_en_base(url: str, table: str = "affectations", key: str = "signalement_id") -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text(f"SELECT {key} FROM {table}"))]
    except sa.exc.OperationalError:
        return []  # not migrated yet
    except sa.exc.ProgrammingError:
        return []
    finally:
        engine.dispose()


def compter(url: str, table: str = "affectations") -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return 0
    finally:
        engine.dispose()


def attendre(condition: Callable[[], bool], timeout: float, quoi: str, hub: PetitHub | None = None) -> None:
    """Poll until ``condition()``; a deadline, not a timed assertion: it only bounds a hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if hub is not None and hub.hub.dead():
            raise AssertionError(f"{hub.hub.dead()} died while waiting for {quoi}\n{hub.logs()}")
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {quoi}" + (f"\n{hub.logs()}" if hub else ""))


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in sorted(offsets.items()) if tp.topic == topic}


def offsets_commites(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    """Partition -> offset committed by ``group`` on ``topic``."""
    return asyncio.run(_committed(bootstrap, group, topic))


@dataclass
class PetitHub:
    """The hub's real processes on an isolated broker (see ``isolated_hub``)."""

    hub: Hub
    broker: EmbeddedBroker | LocalKafka
    database_url: str
    worker_id: str
    base_url: str

    def logs(self) -> str:
        return "\n".join(
            f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.hub.log_dir.glob("*.log"))
        )

    def log(self, name: str) -> str:
        path = self.hub.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def isolated_hub(broker: EmbeddedBroker | LocalKafka, database_url: str, cles: dict[str, str], log_dir: Path,
                 tokens_file: Path | None = None) -> PetitHub:
    port = free_port()
    extra = {"AIGUILLAGE_TOKENS_FILE": str(tokens_file)} if tokens_file else {}
    worker_id = f"aiguillage-panne-{uuid.uuid4().hex[:8]}"
    env = child_env(
        **broker.client_env(), AIGUILLAGE_DATABASE_URL=database_url, AIGUILLAGE_HTTP_PORT=str(port),
        AIGUILLAGE_GROUP_SESSION_TIMEOUT=SESSION_TIMEOUT,
        AIGUILLAGE_WORKER_ID=worker_id, AIGUILLAGE_PARTITIONS="4",
        AIGUILLAGE_AGREGATS_INTERVALLE="1",  # the tests wait for the figures: no need to wait 5 s a stage
        **cles, **extra,
    )
    return PetitHub(Hub(env, log_dir), broker, database_url, worker_id, f"http://127.0.0.1:{port}")


class CuttableProxy:
    """A TCP proxy in its own thread, between a client and ``target``; ``cut()`` closes the
    listener and every open connection (the server looks down), ``restore()`` listens again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    def __enter__(self) -> Self:
        self._thread.start()
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def restore(self) -> None:
        async def listen() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._call(listen())

    def cut(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for w in list(self._writers):
                w.transport.abort()
            self._writers.clear()
        self._call(close())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def graine() -> random.Random:
    seed = random.randrange(1_000_000)
    print(f"random seed of this test: {seed}")
    return random.Random(seed)
