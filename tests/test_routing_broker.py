"""The routing engine on the real embedded broker, in the real worker process."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from aiguillage import nir, topics
from aiguillage.broker import free_port
from aiguillage.codec import AvroCodec
from aiguillage.domain import Signalement, Source
from aiguillage.embedded.ends import true_ends
from aiguillage.runtime import Hub, child_env, wait_http
from sinks import db
from tests.conftest import SESSION_TIMEOUT, nir_aleatoire
from tests.kafka_util import decode_local, read_topic, wait_for
from tests.routing_builders import config_3_equipes, nir_pseudo, sig

pytestmark = pytest.mark.kafka
CODEC = AvroCodec()
TERMINAUX = {"cloture", "refus", "annulation"}
LIEUX = [("31555", "31000", "31"), ("31483", "31800", "31"), ("34172", "34000", "34")]


async def _skip_history(bootstrap: str, group: str, embedded: bool) -> None:
    """Commit the group's offsets at the true end of the topics it reads, so that a new worker
    routes only this test's records, not everything the session produced before."""
    names = [topics.entrants(s) for s in Source] + [topics.AFFECTATIONS, topics.SUIVIS]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(tps)
        reported = await consumer.end_offsets(tps)
        true_end = await true_ends(bootstrap, reported) if embedded else reported
        await consumer.commit({tp: max(reported[tp], true_end.get(tp, 0)) for tp in tps})
    finally:
        await consumer.stop()


@pytest.fixture
def hub_routing(broker, cles, jetons, emetteur, tmp_path: Path) -> Iterator[Callable[..., Hub]]:
    """A hub whose worker reads a routing file of the test's own, from now on."""
    hubs: list[Hub] = []

    def start(routing: Path, components: tuple[str, ...] = ("worker",), store: str = "memory://") -> Hub:
        port = free_port()
        group = f"aiguillage-routing-{uuid.uuid4().hex[:8]}"
        asyncio.run(_skip_history(broker.bootstrap, group, broker.embedded))
        env = child_env(
            **broker.client_env(),
            AIGUILLAGE_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
            AIGUILLAGE_HTTP_PORT=str(port),
            AIGUILLAGE_WORKER_ID=group,
            AIGUILLAGE_GROUP_SESSION_TIMEOUT=SESSION_TIMEOUT,
            AIGUILLAGE_ROUTING_FILE=str(routing),
            AIGUILLAGE_ECHEANCES_INTERVALLE="2",  # the escalation test watches several scans
            AIGUILLAGE_TOKENS_FILE=str(jetons.path),
            AIGUILLAGE_STORE=store,
            AIGUILLAGE_DATA_DIR=str(tmp_path / "data"),  # the worker's RocksDB tables, kept across its restart
            **cles,
            **emetteur.env(),
        )
        hub = Hub(env, tmp_path / f"log-{len(hubs)}")
        hub.base_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        hubs.append(hub)
        db.upgrade(env["AIGUILLAGE_DATABASE_URL"])  # before the gateway: no concurrent CREATE TABLE
        for name in components:
            hub.start(name)
        if "gateway" in components:
            wait_http(f"{hub.base_url}/healthz", timeout=60, proc=hub.processes["gateway"])  # type: ignore[attr-defined]
        return hub

    yield start
    for hub in hubs:
        hub.stop_all()


async def _produce(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        futs = [await producer.send(t, value=v, key=k) for t, k, v in records]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


def produce_signalements(bootstrap: str, batch: list[Signalement]) -> None:
    asyncio.run(_produce(bootstrap, [
        (topics.entrants(s.source), s.cle(), CODEC.encode("Signalement", s.to_avro())) for s in batch
    ]))


def produce_suivis(bootstrap: str, suivis: list[dict[str, Any]]) -> None:
    asyncio.run(_produce(bootstrap, [
        (topics.SUIVIS, s["signalement_id"].encode(), CODEC.encode("Suivi", s)) for s in suivis
    ]))


def decoded(bootstrap: str, topic: str, schema: str) -> list[dict[str, Any]]:
    return decode_local(CODEC, schema, read_topic(bootstrap, topic, idle=0.7))


def suivi(sid: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"suivi_id": f"{sid}:{type_}:{uuid.uuid4().hex[:6]}", "signalement_id": sid, "type": type_,
            "survenu_le": datetime.now(UTC), "commentaire": "texte libre à ne jamais renvoyer", **extra}


def latest_affectations(bootstrap: str, sids: set[str]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for a in decoded(bootstrap, topics.AFFECTATIONS, "Affectation"):
        if a["signalement_id"] in sids and (a["signalement_id"] not in latest or a["sequence"] >= latest[a["signalement_id"]]["sequence"]):
            latest[a["signalement_id"]] = a
    return latest


def recount(bootstrap: str, sids: set[str]) -> Counter:
    """Caseloads from the topics alone: each case's latest decision, minus the cases closed by a suivi."""
    closed = {s["signalement_id"] for s in decoded(bootstrap, topics.SUIVIS, "Suivi")
              if s["signalement_id"] in sids and s["type"] in TERMINAUX}
    return Counter(a["assistant"] for sid, a in latest_affectations(bootstrap, sids).items()
                   if a["assistant"] and sid not in closed and a["dossier_id"] in (None, sid))


def published_caseloads(bootstrap: str, prefixe: str) -> Counter:
    latest = {a["dimensions"]["assistant"]: a["valeur"] for a in decoded(bootstrap, topics.AGREGATS, "Agregat")
              if a["indicateur"] == "charge-assistant" and a["dimensions"]["assistant"].startswith(prefixe)}
    return Counter({k: int(v) for k, v in latest.items() if v})


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_caseloads_equal_a_recount_from_the_topics_across_a_worker_restart(hub_routing, broker, tmp_path, store):
    """With tables in memory, the restarted worker rebuilds them from the changelogs; on disk
    (RocksDB), it reopens them and reads the changelogs from where it stopped."""
    prefixe = f"t{uuid.uuid4().hex[:6]}-"
    routing = tmp_path / "routing.yaml"
    routing.write_text(config_3_equipes(capacite=40, prefixe=prefixe), encoding="utf-8")
    rng = random.Random(4)

    def batch(start: int, n: int) -> list[Signalement]:
        out = []
        for i in range(start, start + n):
            commune, cp, dep = rng.choice(LIEUX)
            assure = i if rng.random() > 0.1 else i - 1  # one in ten: a second partner for the same assuré
            out.append(sig(f"{prefixe}{i}", source=rng.choice(["cpam", "spst", "service-medical", "cap-emploi"]),
                           commune_insee=commune, code_postal=cp, departement=dep, nir_pseudonyme=nir_pseudo(f"{prefixe}{assure}"),
                           arret_jours=rng.choice([None, 30, 120]), consentement=rng.random() > 0.05,
                           recu_le=datetime.now(UTC)))
        return out

    hub = hub_routing(routing, store=store)
    first = batch(0, 1000)
    sids = {s.signalement_id for s in first}
    produce_signalements(broker.bootstrap, first)
    routed = wait_for("first 1000 routed", lambda: len(latest_affectations(broker.bootstrap, sids)) == 1000 and
                      latest_affectations(broker.bootstrap, sids))

    assigned = [a for a in routed.values() if a["assistant"] and a["dossier_id"] in (None, a["signalement_id"])]
    closing, moving = assigned[:300], assigned[300:350]
    suivis = [suivi(a["signalement_id"], "prise-en-charge") for a in closing + moving]
    suivis += [suivi(a["signalement_id"], "cloture", issue="maintien-poste") for a in closing]
    suivis += [suivi(a["signalement_id"], "reorientation", reorientation_vers=f"axe:{'SPS' if a['axe'] == 'PDP' else 'PDP'}") for a in moving]
    second = batch(1000, 1000)
    sids |= {s.signalement_id for s in second}
    produce_suivis(broker.bootstrap, suivis)
    produce_signalements(broker.bootstrap, second)
    time.sleep(0.3)  # let it get going, then stop it mid-stream (it routes ~1,000 in well under a second)
    assert hub.stop("worker") == 0
    hub.start("worker")

    wait_for("all 2000 routed", lambda: len(latest_affectations(broker.bootstrap, sids)) == 2000, timeout=90)
    final = wait_for("published caseloads equal the recount",
                     lambda: (r := recount(broker.bootstrap, sids)) == published_caseloads(broker.bootstrap, prefixe) and r)
    waiting = [a for a in latest_affectations(broker.bootstrap, sids).values() if a["assistant"] is None]
    assert sum(final.values()) == 520, Counter((a["file"], a["nature"], a["sequence"], a["explication"][-90:]) for a in waiting).most_common(8)
    assert waiting and all(a["file"].endswith(("-PDP", "-SPS", "recueil-consentement")) for a in waiting)

    # The life cycle may still be catching up (the worker can route all 2,000 before it is stopped,
    # and its successor then replays the Affectations it had not seen): wait for the retours.
    def statuts() -> Counter[str]:
        return Counter(r["statut"] for src in ("cpam", "spst", "service-medical", "cap-emploi")
                       for r in decoded(broker.bootstrap, topics.retours(src), "Retour") if r["signalement_id"] in sids)

    vus = wait_for("every retour", lambda: (s := statuts())["requested"] >= 2000 and s, timeout=60)
    assert vus["completed"] == 300 and vus["accepted"] == 350, vus


def test_one_assure_from_two_partners_gets_one_case_and_the_partner_sees_each_state_change(
    hub_routing, broker, tmp_path, cles, jetons, exemple_cpam, emetteur
):
    prefixe = f"u{uuid.uuid4().hex[:6]}-"
    routing = tmp_path / "routing.yaml"
    routing.write_text(config_3_equipes(capacite=5, prefixe=prefixe, version="v1"), encoding="utf-8")
    # The affectations sink too: a suivi is accepted from the team holding the signalement, as SQL says.
    hub = hub_routing(routing, components=("worker", "sink-affectations", "gateway"))
    base = hub.base_url  # type: ignore[attr-defined]

    nir_clair = nir_aleatoire()
    exemple_cpam["assure"]["nir"] = nir_clair
    exemple_cpam["reference"] = f"{prefixe}CPAM"
    r = httpx.post(f"{base}/v1/signalements/cpam", json=exemple_cpam, headers=jetons.entete("cpam"), timeout=15)
    assert r.status_code == 202, r.text
    sid_cpam = r.json()["signalement_id"]
    pseudo = nir.pseudonymiser(nir.valider(nir_clair), cles["AIGUILLAGE_PSEUDONYM_KEY"].encode())
    spst = sig(f"{prefixe}SPST", source="spst", nir_pseudonyme=pseudo, arret_jours=40, recu_le=datetime.now(UTC))
    late = sig(f"{prefixe}LATE", commune_insee="34172", code_postal="34000", departement="34",
               recu_le=datetime.now(UTC) - timedelta(days=60))
    produce_signalements(broker.bootstrap, [spst, late])
    mine = {sid_cpam, spst.signalement_id, late.signalement_id}
    affs = wait_for("three routed", lambda: len(got := latest_affectations(broker.bootstrap, mine)) == 3 and got)
    a_cpam, a_spst = affs[sid_cpam], affs[spst.signalement_id]
    assert a_cpam["assistant"] and a_spst["assistant"] == a_cpam["assistant"], (a_cpam["explication"], a_spst["explication"])
    # Whichever the worker saw second is linked to the first's case.
    lie, dossier = (a_spst, a_cpam) if a_spst["dossier_id"] else (a_cpam, a_spst)
    assert lie["dossier_id"] == dossier["signalement_id"] and dossier["dossier_id"] is None
    assert "référent unique" in lie["explication"]

    engine = db.make_engine(hub.env["AIGUILLAGE_DATABASE_URL"])

    def en_sql() -> bool:
        with engine.connect() as conn:
            return conn.execute(db.affectations.select().where(db.affectations.c.signalement_id == sid_cpam)).first() is not None

    wait_for("the affectation in SQL", en_sql)
    engine.dispose()
    assistant = emetteur.entete(habilitations=[f"assistant:{a_cpam['equipe']}"])

    def poster(type_: str, **extra: Any) -> None:
        body = suivi(sid_cpam, type_, **extra)
        body["survenu_le"] = body["survenu_le"].isoformat()
        resp = httpx.post(f"{base}/v1/suivis", json=body, headers=assistant, timeout=15)
        assert resp.status_code == 202, resp.text

    poster("prise-en-charge", assistant=a_cpam["assistant"])
    poster("entretien", mode_entretien="de-visu")
    poster("cloture", issue="maintien-poste")
    poster("entretien", mode_entretien="telephone")  # after the clôture: impossible
    bad = httpx.post(f"{base}/v1/suivis", json={"suivi_id": "x", "signalement_id": sid_cpam, "type": "cloture",
                                               "survenu_le": datetime.now(UTC).isoformat(), "couleur": 1}, headers=assistant, timeout=15)
    assert bad.status_code == 422 and {f["field"] for f in bad.json()["fields"]} == {"couleur"}
    bad = httpx.post(f"{base}/v1/suivis", json={"suivi_id": "x", "signalement_id": sid_cpam, "type": "cloture",
                                               "survenu_le": datetime.now(UTC).isoformat()}, headers=assistant,
                     timeout=15)
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "issue"

    def retours() -> list[tuple[str | None, str, str | None]]:
        return [(r["statut_precedent"], r["statut"], r["issue"]) for r in decoded(broker.bootstrap, "retours.cpam", "Retour")
                if r["signalement_id"] == sid_cpam]

    expected = [(None, "requested", None), ("requested", "accepted", None), ("accepted", "in-progress", None),
                ("in-progress", "completed", "maintien-poste")]
    assert wait_for("retours of each state change", lambda: retours() == expected)
    raw = b"".join(r.value for r in read_topic(broker.bootstrap, "retours.cpam"))
    assert b"texte libre" not in raw
    dead = wait_for("impossible transition dead-lettered", lambda: [
        d for d in decoded(broker.bootstrap, topics.REJETES, "DeadLetter")
        if d["error_code"] == "transition-impossible" and d["original_topic"] == topics.SUIVIS
        and d["original_key"] == sid_cpam.encode()])  # (the broker is shared: other tests' impossible suivis)
    assert "impossible in status 'completed'" in dead[0]["reason"]

    # The late one: one escalation for its breach, however many times the timer looks.
    esc = wait_for("escalation", lambda: [a for a in decoded(broker.bootstrap, topics.AFFECTATIONS, "Affectation")
                                          if a["signalement_id"] == late.signalement_id and a["nature"] == "escalade"])
    time.sleep(5)  # a few more timer rounds
    esc = [a for a in decoded(broker.bootstrap, topics.AFFECTATIONS, "Affectation")
           if a["signalement_id"] == late.signalement_id and a["nature"] == "escalade"]
    assert len(esc) == 1 and esc[0]["sequence"] == 1 and esc[0]["priorite"] == 2
    assert any(a["indicateur"] == "escalades-premier-contact" and a["dimensions"] == {"equipe": "34-a"}
               for a in decoded(broker.bootstrap, topics.AGREGATS, "Agregat"))

    # Hot reload: a new version is used without restart; a broken file is refused, the previous kept.
    routing.write_text(config_3_equipes(capacite=5, prefixe=prefixe, version="v2"), encoding="utf-8")
    essais = iter(range(1000))

    def routed_under_v2() -> bool:
        s = sig(f"{prefixe}V2-{next(essais)}", recu_le=datetime.now(UTC))
        produce_signalements(broker.bootstrap, [s])
        time.sleep(1)
        return latest_affectations(broker.bootstrap, {s.signalement_id}).get(s.signalement_id, {}).get("config_version") == "v2"

    wait_for("v2 in force", routed_under_v2)
    routing.write_text(config_3_equipes(capacite=5, prefixe=prefixe, version="v3").replace("priorite: 2", "priorite: 0"), encoding="utf-8")
    time.sleep(3)
    s3 = sig(f"{prefixe}V3", recu_le=datetime.now(UTC))
    produce_signalements(broker.bootstrap, [s3])
    a3 = wait_for("routed under v2", lambda: latest_affectations(broker.bootstrap, {s3.signalement_id}).get(s3.signalement_id))
    assert a3["config_version"] == "v2"
    log = (hub.log_dir / "worker.log").read_text(errors="replace")
    assert "routing configuration refused" in log and "priorite" in log
