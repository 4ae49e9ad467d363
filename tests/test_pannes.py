"""Nothing lost, nothing doubled: the hub's real processes on a real Apache Kafka and real
databases, crashed (SIGKILL), stopped (SIGTERM), cut from PostgreSQL, cut from the broker, fed
poison. Each test has its own fresh Kafka node, so its topics hold only what it sent."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiguillage import topics
from aiguillage.kafka_local import LocalKafka
from aiguillage.runtime import wait_http
from aiguillage.topics import create_topics
from tests.kafka_util import read_topic
from tests.pannes_util import (
    CODEC,
    CuttableProxy,
    PetitHub,
    affectation,
    attendre,
    compter,
    graine,
    ids_en_base,
    isolated_hub,
    offsets_commites,
    produire,
    produire_affectations,
    produire_signalements,
    signalements,
)

pytestmark = pytest.mark.kafka

N = 10_000
CHUNKS = 20


@pytest.fixture
def broker_isole(tmp_path: Path) -> Iterator[LocalKafka]:
    with LocalKafka(tmp_path / "kafka") as k:
        asyncio.run(create_topics(k.bootstrap, partitions=4))
        yield k


@pytest.fixture
def petit_hub(broker_isole: LocalKafka, cles: dict[str, str], jetons, tmp_path: Path, request: pytest.FixtureRequest):
    hubs: list[PetitHub] = []

    def make(database_url: str) -> PetitHub:
        hubs.append(isolated_hub(broker_isole, database_url, cles, tmp_path / "log", jetons.path))
        return hubs[-1]

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for h in hubs:
        h.hub.stop_all()
        if failed:
            print(h.logs())


def _stream_with_a_crash(hub: PetitHub, victime: str, processes: tuple[str, ...], envoyer, items: list[str]) -> None:
    """Stream the items in CHUNKS; SIGKILL ``victime`` after a random chunk, restart it at once."""
    chunks = [items[i::CHUNKS] for i in range(CHUNKS)]
    crash_after = graine().randrange(2, CHUNKS - 2)
    for name in processes:
        hub.hub.start(name)
    envoyer(hub.broker.bootstrap, chunks[0])
    attendre(lambda: compter(hub.database_url) > 0, 90, "the pipeline to run", hub)
    for i, chunk in enumerate(chunks[1:], start=1):
        envoyer(hub.broker.bootstrap, chunk)
        time.sleep(0.1)
        if i == crash_after:
            assert hub.hub.stop(victime, signal.SIGKILL) == -signal.SIGKILL
            print(f"{victime} killed after chunk {i}, {compter(hub.database_url)} rows in SQL")
            hub.hub.start(victime)
    # A bound on a hang, not a timing assertion: the worker acks each output before marking it.
    attendre(lambda: compter(hub.database_url) >= N, 420, f"{N} affectations in SQL", hub)


def test_ten_thousand_signalements_with_the_worker_killed_end_as_exactly_one_row_each(petit_hub, sqlite_url):
    hub = petit_hub(sqlite_url)
    items = signalements(N)
    _stream_with_a_crash(hub, "worker", ("worker", "sink-affectations"), produire_signalements, items)
    ids = ids_en_base(sqlite_url)
    assert len(ids) == N
    assert set(ids) == {s["signalement_id"] for s in items}


@pytest.mark.postgres
def test_ten_thousand_signalements_with_the_sink_killed_end_as_exactly_one_row_each(petit_hub, postgres_url):
    hub = petit_hub(postgres_url)
    items = signalements(N)
    _stream_with_a_crash(hub, "sink-affectations", ("worker", "sink-affectations"), produire_signalements, items)
    ids = ids_en_base(postgres_url)
    assert len(ids) == N
    assert set(ids) == {s["signalement_id"] for s in items}


def _fins_de_topic(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> offset after its last record, read from the records themselves (the embedded
    broker's ListOffsets under-reports it)."""
    ends: dict[int, int] = {}
    for rec in read_topic(bootstrap, topic):
        ends[rec.partition] = max(ends.get(rec.partition, 0), rec.offset + 1)
    return ends


def test_sigterm_stops_every_process_cleanly_and_a_restart_neither_reroutes_nor_rereads(petit_hub, sqlite_url):
    hub = petit_hub(sqlite_url)
    premiers = signalements(400)
    for name in ("worker", "sink-affectations", "sink-suivis", "sink-agregats", "sink-retours", "gateway"):
        hub.hub.start(name)
    wait_http(f"{hub.base_url}/healthz", timeout=60, proc=hub.hub.processes["gateway"])
    produire_signalements(hub.broker.bootstrap, premiers)
    attendre(lambda: compter(sqlite_url) >= 400, 90, "400 affectations in SQL", hub)

    codes = {name: hub.hub.stop(name) for name in list(hub.hub.processes)}
    assert codes == dict.fromkeys(codes, 0), codes
    assert "stopped; 400 rows written" in hub.log("sink-affectations")
    # Everything the sink wrote is committed: a restarted sink starts at the end.
    ends = _fins_de_topic(hub.broker.bootstrap, topics.AFFECTATIONS)
    committed = offsets_commites(hub.broker.bootstrap, f"{hub.worker_id}-sink-affectations", topics.AFFECTATIONS)
    assert committed == ends

    # The dedup table is recovered from its changelog: re-sent signalements are not routed
    # again. Each re-send is followed, on the same key (so the same partition), by a new one:
    # once the new ones are routed, the re-sends before them have been seen.
    hub.hub.start("worker")
    hub.hub.start("sink-affectations")
    nouveaux = [
        {**s, "signalement_id": n["signalement_id"], "source_ref": n["source_ref"]}
        for s, n in zip(premiers, signalements(400), strict=True)
    ]
    produire_signalements(hub.broker.bootstrap, [x for pair in zip(premiers, nouveaux, strict=True) for x in pair])
    attendre(lambda: compter(sqlite_url) >= 800, 90, "the 400 new affectations in SQL", hub)
    routes = Counter(CODEC.decode("Affectation", r.value)["signalement_id"]
                     for r in read_topic(hub.broker.bootstrap, topics.AFFECTATIONS))
    assert len(routes) == 800
    assert set(routes.values()) == {1}, "a re-sent signalement was routed again after the restart"
    assert hub.hub.stop("sink-affectations") == 0
    assert hub.log("sink-affectations").rstrip().splitlines()[-1].endswith("stopped; 400 rows written, 0 dead letters")


@pytest.mark.postgres
def test_postgresql_unreachable_for_30_s_mid_stream_loses_and_doubles_nothing(petit_hub, postgres_url):
    with CuttableProxy("127.0.0.1", 5432) as proxy:
        par_le_proxy = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        hub = petit_hub(par_le_proxy)
        hub.hub.start("sink-affectations")
        vagues = [[str(uuid.uuid4()) for _ in range(1000)] for _ in range(3)]
        produire_affectations(hub.broker.bootstrap, vagues[0])
        attendre(lambda: compter(postgres_url) >= 1000, 90, "the first wave in SQL", hub)

        proxy.cut()  # the database is gone: listener closed, open connections dropped
        coupe_le = time.monotonic()
        produire_affectations(hub.broker.bootstrap, vagues[1])
        attendre(lambda: "database unavailable" in hub.log("sink-affectations"), 30, "the sink to notice", hub)
        time.sleep(max(0.0, 30 - (time.monotonic() - coupe_le)))
        assert compter(postgres_url) == 1000  # nothing got through the cut
        assert not hub.hub.dead(), "the sink must wait for the database, not die"
        proxy.restore()

        produire_affectations(hub.broker.bootstrap, vagues[2])
        attendre(lambda: compter(postgres_url) >= 3000, 90, "every wave in SQL", hub)
        ids = ids_en_base(postgres_url)
        assert len(ids) == 3000 and set(ids) == {i for v in vagues for i in v}
        assert hub.hub.stop("sink-affectations") == 0


def test_posts_get_503_never_202_while_the_broker_is_away_and_202_again_once_it_is_back(
    petit_hub, sqlite_url, exemple_cpam, jetons
):
    hub = petit_hub(sqlite_url)
    hub.hub.start("gateway")
    wait_http(f"{hub.base_url}/healthz", timeout=60, proc=hub.hub.processes["gateway"])
    url = f"{hub.base_url}/v1/signalements/cpam"

    def poster(n: int, tag: str) -> list[httpx.Response]:
        bodies = [{**exemple_cpam, "reference": f"PANNE-{tag}-{i}"} for i in range(n)]

        async def all_at_once() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=60) as client:
                return await asyncio.gather(*(client.post(url, json=b, headers=jetons.entete("cpam")) for b in bodies))
        return asyncio.run(all_at_once())

    assert [r.status_code for r in poster(2, "avant")] == [202, 202]

    def away_then_back(tag: str) -> None:
        pendant = poster(4, tag)
        assert [r.status_code for r in pendant] == [503] * 4, [r.text for r in pendant]
        assert all(r.headers["Retry-After"].isdigit() for r in pendant)

    hub.broker.pause()  # frozen: connections hang
    try:
        away_then_back("gel")
    finally:
        hub.broker.resume()
    attendre(lambda: poster(1, f"apres-gel-{time.monotonic()}")[0].status_code == 202, 60, "a 202 after the broker thawed", hub)

    hub.broker.stop()  # gone: connections refused; it comes back with its data, on the same ports
    away_then_back("arret")
    hub.broker.start()
    accepted: list[str] = []

    def accepted_once() -> bool:
        r = poster(1, f"apres-arret-{time.monotonic()}")[0]
        if r.status_code == 202:
            accepted.append(r.json()["signalement_id"])
        return bool(accepted)

    attendre(accepted_once, 60, "a 202 after the broker restarted", hub)
    assert not hub.hub.dead(), "the gateway was never restarted"
    on_topic = [CODEC.decode("Signalement", r.value)["signalement_id"]
                for r in read_topic(hub.broker.bootstrap, topics.entrants("cpam"))]
    assert accepted[0] in on_topic  # a 202 is a write the broker has


@pytest.mark.postgres
def test_poison_records_on_affectations_go_to_the_dlq_and_the_partition_moves_on(petit_hub, postgres_url):
    hub = petit_hub(postgres_url)
    hub.hub.start("sink-affectations")
    avant, apres = [str(uuid.uuid4()) for _ in range(50)], [str(uuid.uuid4()) for _ in range(50)]
    trop_long = str(uuid.uuid4())

    def sur_p0(sid: str, **changes: object) -> tuple[str, bytes, bytes, int]:
        return topics.AFFECTATIONS, sid.encode(), CODEC.encode("Affectation", {**affectation(sid), **changes}), 0

    produire(hub.broker.bootstrap, [
        *(sur_p0(s) for s in avant),
        (topics.AFFECTATIONS, b"garbage", b"\x00\x00\x00\x00\x07not avro at all", 0),
        sur_p0(trop_long, departement="9999999"),  # departement is VARCHAR(3): PostgreSQL refuses it
        *(sur_p0(s) for s in apres),
    ])
    attendre(lambda: compter(postgres_url) >= 100, 90, "the records after the poison in SQL", hub)
    assert set(ids_en_base(postgres_url)) == set(avant) | set(apres)

    dead = [CODEC.decode("DeadLetter", r.value) for r in read_topic(hub.broker.bootstrap, topics.REJETES)]
    par_offset = {d["original_offset"]: d for d in dead if d["stage"] == "sink-affectations"}
    assert sorted(par_offset) == [50, 51]
    assert par_offset[50]["original_key"] == b"garbage"
    assert par_offset[51]["error_code"] == "sql-refuse"
    assert "too long" in par_offset[51]["reason"]
    assert all(d["reason"] and d["original_topic"] == topics.AFFECTATIONS for d in par_offset.values())
    ends = _fins_de_topic(hub.broker.bootstrap, topics.AFFECTATIONS)
    attendre(
        lambda: offsets_commites(hub.broker.bootstrap, f"{hub.worker_id}-sink-affectations", topics.AFFECTATIONS).get(0) == ends[0],
        30, "partition 0 committed past the poison", hub,
    )
