"""Staff token verification against a test issuer served over HTTP (its own keys)."""

from __future__ import annotations

import pytest

from aiguillage.auth.droits import Habilitation, Role
from aiguillage.auth.oidc import JetonRefuse, Verificateur
from tests.oidc_util import AUDIENCE, Emetteur


def _verificateur(e: Emetteur, **kw) -> Verificateur:
    return Verificateur(e.issuer, AUDIENCE, leeway=5, **kw)


def test_a_good_token_gives_its_habilitations_via_discovery(emetteur):
    p = _verificateur(emetteur).verifier(emetteur.jeton("responsable-31", sub="alice"))
    assert p.sub == "alice"
    assert p.habilitations == (Habilitation(Role.RESPONSABLE, territoire="31"),)


def test_the_jwks_url_may_be_configured_and_keys_are_cached(emetteur):
    v = Verificateur(emetteur.issuer, AUDIENCE, jwks_url=f"{emetteur.issuer}/jwks.json")
    avant = emetteur.requetes
    for _ in range(5):
        v.verifier(emetteur.jeton("pilotage"))
    assert emetteur.requetes - avant == 1


@pytest.mark.parametrize("cas", ["cle-inconnue", "cle-usurpee", "expire", "autre-audience", "autre-emetteur",
                                 "es256-inconnue", "pas-un-jwt", "non-signe"])
def test_bad_tokens_are_refused(emetteur, cas):
    with pytest.raises(JetonRefuse):
        _verificateur(emetteur).verifier(emetteur.mauvais_jetons()[cas])


def test_leeway_accepts_a_small_clock_skew_only(emetteur):
    v = _verificateur(emetteur)
    v.verifier(emetteur.jeton("pilotage", duree=-2))  # 2 s past its expiry, 5 s allowed
    with pytest.raises(JetonRefuse, match="expired"):
        v.verifier(emetteur.jeton("pilotage", duree=-30))


def test_no_issuer_configured_refuses_everything(emetteur):
    with pytest.raises(JetonRefuse, match="no identity provider"):
        Verificateur(None, AUDIENCE).verifier(emetteur.jeton("admin"))


def test_a_roles_claim_of_another_name(emetteur):
    tok = emetteur.jeton("pilotage")
    assert _verificateur(emetteur, claim="groups").verifier(tok).habilitations == ()


def test_the_dev_issuer_tokens_verify_like_any_provider(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from aiguillage.auth.dev_issuer import ROLES_DEMO
    from aiguillage.auth.dev_issuer import Emetteur as EmetteurDev

    dev: list[EmetteurDev] = []

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            import json
            d = dev[0]
            body = d.jwks() if self.path.endswith("jwks.json") else {"issuer": d.issuer, "jwks_uri": f"{d.issuer}/jwks.json"}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        dev.append(EmetteurDev(f"http://127.0.0.1:{srv.server_address[1]}/dev-oidc"))
        v = Verificateur(dev[0].issuer, "aiguillage")
        for role, jeton in dev[0].jetons_demo().items():
            assert [str(h) for h in v.verifier(jeton).habilitations] == ROLES_DEMO[role]
    finally:
        srv.shutdown()
        srv.server_close()


def test_up_runs_its_development_issuer_only_without_a_real_provider(tmp_path):
    import json

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from aiguillage.auth import dev_issuer
    from aiguillage.up import _dev_issuer

    reel = {"AIGUILLAGE_OIDC_ISSUER": "https://idp.example.org/realms/carsat"}
    assert _dev_issuer(reel, 8080, tmp_path) == {}
    assert reel == {"AIGUILLAGE_OIDC_ISSUER": "https://idp.example.org/realms/carsat"}  # nothing added
    assert not (tmp_path / "dev-oidc-jwks.json").exists()

    env: dict[str, str] = {}
    jetons = _dev_issuer(env, 8080, tmp_path)
    assert set(jetons) == {"assistant", "responsable", "pilotage", "admin"}
    assert env["AIGUILLAGE_OIDC_ISSUER"] == "http://127.0.0.1:8080/dev-oidc"
    publie = json.loads((tmp_path / "dev-oidc-jwks.json").read_text())
    assert "d" not in publie["keys"][0]  # the public key only: the private one never leaves up
    app = FastAPI()
    app.include_router(dev_issuer.router(tmp_path / "dev-oidc-jwks.json"))
    client = TestClient(app)
    conf = client.get("/dev-oidc/.well-known/openid-configuration").json()
    assert conf == {"issuer": env["AIGUILLAGE_OIDC_ISSUER"], "jwks_uri": f"{env['AIGUILLAGE_OIDC_ISSUER']}/jwks.json",
                    "id_token_signing_alg_values_supported": ["ES256"]}
    assert client.get("/dev-oidc/jwks.json").json()["keys"] == publie["keys"]
