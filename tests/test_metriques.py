"""What an operator reads of a running hub on Apache Kafka (issue 21): the counters of /metrics
moved by exactly what was sent, the routing latency observed, the consumer lag above 0 while the
worker is paused and back to 0 once it caught up; a sink's /readyz naming the database while it
is away; JSON log lines that parse and hold no NIR."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from aiguillage import nir, topics
from aiguillage.broker import free_port
from aiguillage.domain import Source
from tests.conftest import EXEMPLES, nir_aleatoire
from tests.pg_util import PostgresPrive

pytestmark = pytest.mark.kafka

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def lire_metriques(base_url: str) -> Series:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def valeur(series: Series, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 if none)."""
    return sum(v for (n, ls), v in series.items() if n == name and set(labels.items()) <= set(ls))


def attendre(condition, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (result := condition()):
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def corps_cpam(n: str) -> bytes:
    body = json.loads((EXEMPLES / "cpam.json").read_text(encoding="utf-8"))
    body["reference"] = f"CPAM31-{uuid.uuid4().hex[:10]}"
    body["assure"]["nir"] = n
    return json.dumps(body).encode()


def corps_cap_emploi(n: str) -> bytes:
    body = json.loads((EXEMPLES / "cap-emploi.json").read_text(encoding="utf-8"))
    body["idDossier"] = f"CE31-{uuid.uuid4().hex[:10]}"
    body["beneficiaire"]["numeroSecuriteSociale"] = n
    return json.dumps(body).encode()


def poster(hub, jetons, source: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{hub.base_url}/v1/signalements/{source}", content=body, timeout=30,
                      headers={**jetons.entete(source), "Content-Type": "application/json"})


def affectations(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM affectations")).scalar_one()
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


ROUTAGE = ("aiguillage_decisions_total", "aiguillage_latence_affectation_secondes_count",
           "aiguillage_sink_lignes_total")


def au_repos(hub, url: str, sid: str) -> Series:
    """The metrics once ``sid`` is in SQL, every hub group's lag is 0 and the routing and sink
    counters held still for 3 s."""
    attendre(lambda: route_en_sql(url, sid), 90, f"{sid} in SQL")
    previous: list[Series] = []

    def still() -> Series | None:
        m = lire_metriques(hub.base_url)
        lag = valeur(m, "aiguillage_consumer_lag")
        same = bool(previous) and all(valeur(m, n) == valeur(previous[-1], n) for n in ROUTAGE)
        previous.append(m)
        return m if same and lag == 0 else None
    return attendre(still, 90, "the hub at rest", every=3)


def route_en_sql(url: str, sid: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM affectations WHERE signalement_id = :s"),
                                {"s": sid}).scalar_one() > 0
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def test_les_compteurs_bougent_de_ce_qui_a_ete_envoye(hub_factory, jetons, sqlite_url, tmp_path):
    (tmp_path / "metrics").mkdir()  # one place for every process's metrics, as under `aiguillage up`
    # A session longer than the pause below: the lag is what it tests, not a rejoin after an eviction.
    hub = hub_factory(sqlite_url, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), AIGUILLAGE_LAG_INTERVALLE="1",
                      AIGUILLAGE_LOG_FORMAT="json", AIGUILLAGE_GROUP_SESSION_TIMEOUT="60")
    # The session broker's topics hold earlier tests' records, which this hub's new groups read
    # too: the counters are compared with the hub at rest (caught up, nothing moving) before.
    warm = poster(hub, jetons, "cpam", corps_cpam(nir_aleatoire()))
    assert warm.status_code == 202, warm.text
    avant = au_repos(hub, sqlite_url, warm.json()["signalement_id"])
    nirs = [nir_aleatoire() for _ in range(5)]
    for n in nirs[:3]:
        assert poster(hub, jetons, "cpam", corps_cpam(n)).status_code == 202
    for n in nirs[3:]:
        assert poster(hub, jetons, "cap-emploi", corps_cap_emploi(n)).status_code == 202
    faux = nirs[0][:13] + f"{(int(nirs[0][13:]) % 97) + 1:02d}"  # the right shape, the wrong key
    bad = poster(hub, jetons, "cpam", corps_cpam(faux))
    assert bad.status_code == 422 and bad.json()["error"] == "nir-cle-invalide", bad.text

    def moved(m: Series, name: str, **labels: str) -> float:
        return valeur(m, name, **labels) - valeur(avant, name, **labels)

    def routes() -> Series | None:
        m = lire_metriques(hub.base_url)
        ok = moved(m, "aiguillage_latence_affectation_secondes_count") >= 5 \
            and moved(m, "aiguillage_sink_lignes_total", table="affectations") >= 5
        return m if ok else None
    m = attendre(routes, 90, "the worker's and the sink's counters")

    assert moved(m, "aiguillage_signalements_acceptes_total", source="cpam", canal="http") == 3
    assert moved(m, "aiguillage_signalements_acceptes_total", source="cap-emploi", canal="http") == 2
    assert moved(m, "aiguillage_signalements_rejetes_total", source="cpam", stage="gateway",
                 code="nir-cle-invalide") == 1
    assert moved(m, "aiguillage_signalements_rejetes_total") == 1
    assert moved(m, "aiguillage_dlq_total", source="cpam", stage="gateway", code="nir-cle-invalide") == 1
    route = "/v1/signalements/{source}"
    assert moved(m, "aiguillage_http_reponses_total", route=route, status="202") == 5
    assert moved(m, "aiguillage_http_reponses_total", route=route, status="422") == 1
    assert moved(m, "aiguillage_http_duree_secondes_count", route=route) == 6
    assert moved(m, "aiguillage_decisions_total") == 5
    assert moved(m, "aiguillage_latence_affectation_secondes_count") == 5
    assert moved(m, "aiguillage_latence_affectation_secondes_sum") > 0
    assert moved(m, "aiguillage_sink_lignes_total", table="affectations") == 5
    for name, labels in m:  # bounded labels: no id, no NIR in any series
        assert name.startswith(("aiguillage_", "python_", "process_")) or not labels
        assert not any(re.search(r"\d{13}|[0-9a-f]{32}", v) for _, v in labels), (name, labels)

    # The lag, read by the gateway from outside: back to 0, above 0 while the worker is paused.
    group = hub.env["AIGUILLAGE_WORKER_ID"]
    entrant = topics.entrants(Source.CPAM)

    def lag_worker() -> float:
        return valeur(lire_metriques(hub.base_url), "aiguillage_consumer_lag", group=group, topic=entrant)
    attendre(lambda: any(n == "aiguillage_consumer_lag" and ("group", group) in ls
                         for n, ls in lire_metriques(hub.base_url)), 30, "a lag reading of the worker's group")
    attendre(lambda: lag_worker() == 0, 30, "the worker's lag back to 0")
    worker = hub.hub.processes["worker"]
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        pendant = [poster(hub, jetons, "cpam", corps_cpam(nir_aleatoire())) for _ in range(4)]
        assert all(r.status_code == 202 for r in pendant)
        attendre(lambda: lag_worker() >= 4, 30, "a lag of 4 while the worker is paused")
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    try:
        attendre(lambda: lag_worker() == 0, 120, "the lag back to 0 once the worker caught up")
    except AssertionError:
        m = lire_metriques(hub.base_url)
        print("lag of the worker's group:", {ls: v for (n, ls), v in m.items()
                                             if n == "aiguillage_consumer_lag" and ("group", group) in ls and v})
        raise

    for r in pendant:
        attendre(lambda r=r: route_en_sql(sqlite_url, r.json()["signalement_id"]), 60, "the 4 routed")

    # Every line of every process's log is a JSON object naming its process; no NIR in any.
    processes = set()
    for log in hub.hub.log_dir.glob("*.log"):
        text = log.read_text(encoding="utf-8")
        for n in [*nirs, faux]:
            assert n not in text, f"a NIR in clear in {log.name}"
        for line in text.splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            assert {"time", "level", "process", "logger", "message"} <= obj.keys(), line
            processes.add(obj["process"])
    assert {"worker", "gateway"} <= processes, processes


def test_readyz_d_un_sink_nomme_la_base_absente(hub_factory):
    """Its database stopped under a running sink: the sink's /readyz answers 503 naming the
    database, and 200 once the database is back; the sink lives through it."""
    with PostgresPrive() as pg:
        port = free_port()
        hub = hub_factory(pg.url, components=("sink-affectations",), AIGUILLAGE_METRICS_PORT=str(port))
        url = f"http://127.0.0.1:{port}/readyz"
        attendre(lambda: _status(url) == 200, 60, "the sink ready")
        assert httpx.get(url, timeout=10).json()["checked"] == ["broker", "database"]
        pg.stop()
        r = attendre(lambda: (resp := _get(url)) is not None and resp.status_code == 503 and resp, 30,
                     "503 from the sink with the database stopped")
        assert list(r.json()["failing"]) == ["database"], r.json()
        pg.start()
        attendre(lambda: _status(url) == 200, 60, "the sink ready again")
        assert hub.hub.processes["sink-affectations"].poll() is None, "the sink died while the database was away"


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=10)
    except httpx.HTTPError:
        return None


def _status(url: str) -> int | None:
    r = _get(url)
    return r.status_code if r is not None else None


def test_nir_masque_dans_les_journaux():
    """Should a library echo a payload, the NIR shape with a valid key is masked, whatever its spacing."""
    import logging

    from aiguillage import logs

    n = nir.avec_cle("1840312345678")
    records: list[str] = []

    class Garde(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Garde()
    handler.addFilter(logs.SansNir())
    logger = logging.getLogger("test-nir")
    logger.addHandler(handler)
    try:
        logger.warning("body %s", {"nir": n})
        logger.warning("spaced 1 84 03 12 345 678 %s", n[-2:])
        logger.warning("a timestamp 1764614400123 and an offset 123456789012345 stay")
    finally:
        logger.removeHandler(handler)
    assert n not in records[0] and logs.MASQUE in records[0]
    assert logs.MASQUE in records[1]
    assert "1764614400123" in records[2] and "123456789012345" in records[2]

