"""Kafka client security: the environment -> aiokafka arguments and Faust credentials."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from aiguillage import security
from aiguillage.config import MissingSecret, Settings
from aiguillage.kafka import producer_config
from streams.topology import make_app


def _settings(**env: str) -> Settings:
    return Settings(_env_file=None, broker="kafka://kafka:9093", **env)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed certificate and its key, as the CA and as the client's certificate."""
    directory = tmp_path_factory.mktemp("pki")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aiguillage-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = {"cert": directory / "cert.pem", "key": directory / "key.pem"}
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def test_plaintext_adds_nothing_to_any_client():
    s = _settings()
    assert security.kafka_client_kwargs(s) == {}
    assert security.faust_credentials(s) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_passes_mechanism_user_and_password(mechanism):
    s = _settings(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism, sasl_username="aiguillage-worker", sasl_password="s3cret")
    assert security.kafka_client_kwargs(s) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "aiguillage-worker",
        "sasl_plain_password": "s3cret",
    }
    creds = security.faust_credentials(s)
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.protocol.value, creds.mechanism.value, creds.username) == ("SASL_PLAINTEXT", mechanism, "aiguillage-worker")


def test_sasl_ssl_verifies_the_brokers_against_the_given_ca(pki):
    s = _settings(
        security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u", sasl_password="p", ssl_cafile=str(pki["cert"]),
    )
    kwargs = security.kafka_client_kwargs(s)
    context = kwargs["ssl_context"]
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert any("aiguillage-test" in str(c["subject"]) for c in context.get_ca_certs())
    creds = security.faust_credentials(s)
    assert creds.protocol.value == "SASL_SSL" and creds.ssl_context is not None


def test_mutual_tls_loads_the_client_certificate(pki):
    s = _settings(
        security_protocol="SSL", ssl_cafile=str(pki["cert"]),
        ssl_certfile=str(pki["cert"]), ssl_keyfile=str(pki["key"]),
    )
    assert security.kafka_client_kwargs(s)["security_protocol"] == "SSL"
    creds = security.faust_credentials(s)
    assert isinstance(creds, faust.SSLCredentials) and creds.protocol.value == "SSL"


def test_sasl_without_a_password_is_refused_naming_the_variables():
    s = _settings(security_protocol="SASL_SSL", sasl_username="u")
    with pytest.raises(MissingSecret, match="AIGUILLAGE_SASL_USERNAME and AIGUILLAGE_SASL_PASSWORD"):
        security.kafka_client_kwargs(s)


def test_a_missing_certificate_file_is_refused_naming_the_variable(tmp_path):
    s = _settings(security_protocol="SSL", ssl_cafile=str(tmp_path / "absent.pem"))
    with pytest.raises(MissingSecret, match="AIGUILLAGE_SSL_CAFILE"):
        security.kafka_client_kwargs(s)


def test_an_unknown_mechanism_is_refused_naming_the_field():
    with pytest.raises(ValidationError, match="sasl_mechanism"):
        _settings(sasl_mechanism="GSSAPI")


def test_the_password_never_shows_in_the_settings_repr():
    s = _settings(security_protocol="SASL_SSL", sasl_username="u", sasl_password="s3cret")
    assert "s3cret" not in repr(s)


def test_every_client_of_the_hub_gets_the_security_settings(monkeypatch):
    """Producer (gateway, sinks' DLQ), admin (topics), consumers (sinks) read the process's
    settings; the Faust worker gets them as broker credentials."""
    s = _settings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_username="gw", sasl_password="p")
    monkeypatch.setattr(security, "get_settings", lambda: s)
    config = producer_config("kafka:9093")
    assert config["sasl_mechanism"] == "SCRAM-SHA-256" and config["sasl_plain_username"] == "gw"

    async def build() -> None:  # aiokafka accepts them (clients are only built, not started)
        AIOKafkaProducer(**config)
        AIOKafkaAdminClient(bootstrap_servers="kafka:9093", **security.kafka_client_kwargs())

    asyncio.run(build())
    app = make_app(s)
    assert isinstance(app.conf.broker_credentials, faust.SASLCredentials)
    assert app.conf.broker_credentials.mechanism.value == "SCRAM-SHA-256"
