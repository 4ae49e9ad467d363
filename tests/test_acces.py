"""Who may see and change what (issue 23), on the real gateway process with a test issuer.

- every route answers 401 without a credential, but the open ones (in process, no broker);
- on Apache Kafka: each role against each staff endpoint; bad tokens 401; a caseworker's suivi on
  another team's signalement 403 and nothing published; one audit row per access, in the topic
  and the table, and neither holds a NIR or free text;
- the rate limit per partner token: 429 with Retry-After for the one over it, not the others.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from aiguillage import nir, topics
from aiguillage.config import Settings
from aiguillage.http.app import OUVERTES, make_api
from tests.conftest import nir_aleatoire
from tests.kafka_util import read_topic
from tests.oidc_util import ROLES

STAFF_ROLES = list(ROLES)


def _app(tmp_path, emetteur, jetons, cles, **extra):
    settings = Settings(_env_file=None, broker="kafka://127.0.0.1:1", database_url=f"sqlite:///{tmp_path / 'a.db'}",
                        tokens_file=jetons.path, pseudonym_key=cles["AIGUILLAGE_PSEUDONYM_KEY"],
                        dlq_key=cles["AIGUILLAGE_DLQ_KEY"], oidc_issuer=emetteur.issuer,
                        oidc_audience="aiguillage-test", **extra)
    return make_api(settings)


def _api_routes(routes):
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI >= 0.16x keeps an included router whole (no prefix here)
            yield from _api_routes(route.original_router.routes)


def _staff(app, method: str, path: str) -> bool:
    """The route takes staff tokens: one of its dependencies is the guard's (aiguillage/auth/garde.py)."""
    route = next(r for r in _api_routes(app.routes) if r.path == path and method in r.methods)
    return any(getattr(d.call, "__name__", "").startswith(("exige_", "identifie")) for d in route.dependant.dependencies)


def _routes(app):
    for route in _api_routes(app.routes):
        for method in route.methods - {"HEAD"}:
            yield method, route.path, re.sub(r"\{[^}]+\}", "cpam", route.path)


def test_every_route_but_the_open_ones_answers_401_without_credential(tmp_path, emetteur, jetons, cles):
    app = _app(tmp_path, emetteur, jetons, cles)
    client = TestClient(app)  # no lifespan: nothing here reaches a broker
    vus = []
    for method, path, url in _routes(app):
        if path in (*OUVERTES, "/metrics"):
            continue
        vus.append(path)
        r = client.request(method, url, json={})
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        # A partner token is never a staff credential; a token without a role gets 403 naming the right.
        if _staff(app, method, path):
            r = client.request(method, url, json={}, headers=jetons.entete("cpam"))
            assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"], path
            if path != "/v1/moi":
                r = client.request(method, url, json={}, headers=emetteur.entete("sans-role"))
                assert r.status_code == 403 and r.json()["droit"], (path, r.text)
    assert {"/v1/files", "/v1/files/{file}", "/v1/suivis", "/v1/charges", "/v1/reaffectations", "/v1/agregats",
            "/v1/moi", "/v1/signalements/{source}"} <= set(vus)
    assert not _staff(app, "POST", "/v1/signalements/{source}") and _staff(app, "GET", "/v1/files")
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200  # open by default


def test_metrics_can_be_restricted_to_admin(tmp_path, emetteur, jetons, cles):
    client = TestClient(_app(tmp_path, emetteur, jetons, cles, metrics_public=False))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=emetteur.entete("pilotage")).json()["droit"] == "lire-metriques"
    assert client.get("/metrics", headers=emetteur.entete("admin")).status_code == 200


def test_the_body_limit_holds_on_every_post(tmp_path, emetteur, jetons, cles):
    client = TestClient(_app(tmp_path, emetteur, jetons, cles, max_body_bytes=2048))
    for url in ("/v1/suivis", "/v1/reaffectations", "/v1/signalements/cpam", "/v1/files"):
        r = client.post(url, content=b"x" * 4096, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["error"] == "corps-trop-grand", url


@pytest.mark.kafka
def test_each_role_against_each_endpoint_with_its_audit_trail(hub_factory, sqlite_url, emetteur, jetons,
                                                             exemple_cpam, broker, cles):
    hub = hub_factory(sqlite_url, components=("worker", "sink-affectations", "sink-audit", "gateway"))
    base, run = hub.base_url, uuid.uuid4().hex[:8]
    commentaire = f"Texte libre {run} : loyer impayé, ne jamais tracer."
    nirs, sids = {}, {}
    for lieu, commune, cp in (("toulouse", "31555", "31000"), ("rodez", "12202", "12000")):
        body = {**exemple_cpam, "reference": f"ACCES-{run}-{lieu}", "commentaire": commentaire,
                "assure": {**exemple_cpam["assure"], "nir": nir_aleatoire(), "commune_insee": commune, "code_postal": cp}}
        # (one NIR each: the same assuré's second signalement would join the first's case, its team)
        nirs[lieu] = body["assure"]["nir"]
        r = httpx.post(f"{base}/v1/signalements/cpam", json=body, headers=jetons.entete("cpam"), timeout=15)
        assert r.status_code == 202, r.text
        sids[lieu] = r.json()["signalement_id"]
    engine = sa.create_engine(sqlite_url)

    def sql(q: str, **params) -> list[dict]:
        try:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(sa.text(q), params).mappings()]
        except sa.exc.OperationalError:
            return []

    deadline = time.monotonic() + 180  # a loaded machine: the worker's group join, then routing
    while len(rows := sql("select signalement_id, file, equipe from affectations where signalement_id in (:a, :b)",
                          a=sids["toulouse"], b=sids["rodez"])) < 2:
        assert time.monotonic() < deadline, hub.logs()
        time.sleep(0.5)
    assert {r["equipe"] for r in rows} == {"31-toulouse", "12-rodez"}
    file_toulouse = next(r["file"] for r in rows if r["equipe"] == "31-toulouse")

    def h(role: str) -> dict[str, str]:
        return emetteur.entete(role, sub=f"{role}.{run}")

    def statut(method: str, path: str, role: str, **kw) -> int:
        return httpx.request(method, f"{base}{path}", headers=h(role), timeout=15, **kw).status_code

    # Bad tokens: 401, with the reason in WWW-Authenticate; a partner token is not a staff credential.
    for cas, jeton in {**emetteur.mauvais_jetons(), "partenaire": jetons.par_source["cpam"]}.items():
        r = httpx.get(f"{base}/v1/files", headers={"Authorization": f"Bearer {jeton}"}, timeout=15)
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"], (cas, r.text)
    r = httpx.get(f"{base}/v1/files", timeout=15)
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="aiguillage"'

    ok = {200, 202}
    attendu_lecture = {  # role -> (GET /v1/files, GET /v1/files/<toulouse>, GET /v1/charges, GET /v1/agregats)
        "assistant-toulouse": (200, 200, 403, 403), "assistant-rodez": (200, 403, 403, 403),
        "responsable-toulouse": (200, 200, 200, 200), "responsable-31": (200, 200, 200, 200),
        "responsable-12": (200, 403, 200, 200), "pilotage": (403, 403, 403, 200), "admin": (403, 403, 403, 200),
        "sans-role": (403, 403, 403, 403),
    }
    acces_audites: dict[str, list[str]] = {}
    for role, attendu in attendu_lecture.items():
        obtenu = tuple(statut("GET", p, role) for p in ("/v1/files", f"/v1/files/{file_toulouse}", "/v1/charges",
                                                       "/v1/agregats"))
        assert obtenu == attendu, role
        assert statut("GET", "/v1/moi", role) == 200
        acces_audites[role] = [a for a, s in zip(("lire-files", "lire-file", "lire-charges"), obtenu) if s == 200]
    # What each reader sees: its team's or territory's rows only.
    vus = {role: {s["signalement_id"] for f in httpx.get(f"{base}/v1/files", headers=h(role)).json()
                  for s in f["signalements"]} & set(sids.values()) for role in ("assistant-toulouse", "responsable-12")}
    assert vus == {"assistant-toulouse": {sids["toulouse"]}, "responsable-12": {sids["rodez"]}}
    acces_audites["assistant-toulouse"].append("lire-files")
    acces_audites["responsable-12"].append("lire-files")
    pilotage = httpx.get(f"{base}/v1/files", headers=h("pilotage")).json()
    assert pilotage["droit"] == "lire-files"
    moi = httpx.get(f"{base}/v1/moi", headers=h("responsable-31")).json()
    assert "reaffecter" in moi["droits"] and "31-comminges" in moi["equipes"] and "12-rodez" not in moi["equipes"]

    # Suivis on the Toulouse signalement: its team's assistant and managers; nobody else, nothing published.
    suivis = {}
    for role in STAFF_ROLES:
        sid_suivi = f"acces-{run}-{role}"
        body = {"suivi_id": sid_suivi, "signalement_id": sids["toulouse"], "type": "entretien",
                "mode_entretien": "telephone", "survenu_le": datetime.now(UTC).isoformat(), "commentaire": commentaire}
        suivis[role] = statut("POST", "/v1/suivis", role, json=body)
    permis = {"assistant-toulouse", "responsable-toulouse", "responsable-31"}
    assert {r for r, s in suivis.items() if s in ok} == permis, suivis
    assert all(s == 403 for r, s in suivis.items() if r not in permis)
    for role in permis:
        acces_audites[role].append("suivi")

    # Reassignments: within the team (another axe) or the territory.
    reaff = {role: statut("POST", "/v1/reaffectations", role,
                          json={"signalement_id": sids["toulouse"], "vers": "equipe:31-comminges"})
             for role in STAFF_ROLES}
    assert {r for r, s in reaff.items() if s == 202} == {"responsable-31"}, reaff
    assert statut("POST", "/v1/reaffectations", "responsable-12",
                  json={"signalement_id": sids["rodez"], "vers": "axe:PDP"}) == 202
    acces_audites["responsable-31"].append("reaffectation")
    acces_audites["responsable-12"].append("reaffectation")

    publies = [r for r in read_topic(broker.bootstrap, topics.SUIVIS, idle=2) if r.key == sids["toulouse"].encode()]
    ids_publies = {s for r in publies for s in re.findall(rb"acces-" + run.encode() + rb"-[\w-]+", r.value)}
    assert ids_publies == {f"acces-{run}-{r}".encode() for r in permis}

    # One audit row per access, in the table (through the topic and its sink).
    attendus = sorted((f"{role}.{run}", a) for role, actions in acces_audites.items() for a in actions)
    deadline = time.monotonic() + 60
    while True:
        lignes = sql("select * from audit where qui like :motif", motif=f"%.{run}")
        obtenus = sorted((r["qui"], r["action"]) for r in lignes)
        if obtenus == attendus:
            break
        assert time.monotonic() < deadline, (obtenus, attendus)
        time.sleep(0.5)
    suivi_row = next(r for r in lignes if r["action"] == "suivi")
    assert suivi_row["signalements"] == sids["toulouse"] and suivi_row["equipe"] == "31-toulouse"
    # (the file may hold other tests' Toulouse signalements: the broker is shared, the worker reads it all)
    lus = next(r for r in lignes if r["qui"] == f"assistant-toulouse.{run}" and r["action"] == "lire-file")
    assert sids["toulouse"] in lus["signalements"].split() and sids["rodez"] not in lus["signalements"]

    # Neither the topic nor the table holds a NIR (clear or pseudonymised) or the free text.
    pseudos = {nir.pseudonymiser(nir.valider(n), cles["AIGUILLAGE_PSEUDONYM_KEY"].encode()) for n in nirs.values()}
    brut = b"".join(r.value for r in read_topic(broker.bootstrap, topics.AUDIT, idle=2))
    table = repr(sql("select * from audit")).encode()
    for blob in (brut, table):
        assert run.encode() in blob or blob is brut  # the table holds this test's rows
        for interdit in {*nirs.values(), *pseudos, commentaire, "loyer", "Texte libre"}:
            assert interdit.encode() not in blob, interdit
        sans_ids = re.sub(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", b"", blob)
        assert not re.search(rb"\d{13}", sans_ids)  # nothing NIR-shaped at all
    engine.dispose()


@pytest.mark.kafka
def test_a_partner_over_its_rate_limit_gets_429_and_the_others_are_not_slowed(hub_factory, sqlite_url, jetons):
    hub = hub_factory(sqlite_url, components=("gateway",), AIGUILLAGE_LIMITE_PARTENAIRE="2",
                      AIGUILLAGE_LIMITE_PARTENAIRE_RAFALE="5")
    url = f"{hub.base_url}/v1/signalements"
    with httpx.Client(timeout=15) as client:
        # An empty JSON body: the gateway answers 415 or 422 without publishing, all a limit needs.
        def post(source: str) -> httpx.Response:
            return client.post(f"{url}/{source}", json={}, headers=jetons.entete(source))

        mdph = [post("mdph").status_code for _ in range(12)]
        assert 429 not in mdph[:5] and mdph.count(429) >= 6, mdph
        r = post("mdph")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and r.json()["error"] == "trop-de-requetes"
        t0 = time.monotonic()
        assert [post("cpam").status_code for _ in range(5)] == [422] * 5  # another partner: its own bucket
        assert time.monotonic() - t0 < 5
        time.sleep(1.2)
        assert post("mdph").status_code != 429  # refilled at 2 a second


def test_token_buckets_refill_at_their_rate_and_forget_full_ones():
    from aiguillage.http import limites

    t = [0.0]
    seaux = limites.Seaux(2.0, 3, horloge=lambda: t[0])
    assert [seaux.prendre("a") for _ in range(3)] == [0.0] * 3
    assert seaux.prendre("a") == pytest.approx(0.5)
    assert seaux.prendre("b") == 0.0  # each key its own bucket
    t[0] = 0.5
    assert seaux.prendre("a") == 0.0 and seaux.prendre("a") > 0
    t[0] = 100.0
    seaux._oublier(t[0])
    assert seaux._seaux == {}
