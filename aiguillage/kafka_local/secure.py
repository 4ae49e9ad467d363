"""What a secured local Kafka needs: a CA and a broker certificate, and SCRAM principals.

The certificates are made here with ``cryptography`` (no keytool): an EC P-256 CA and a
broker certificate for ``localhost`` and ``127.0.0.1``, written as PEM, which Kafka reads
directly (``ssl.keystore.type=PEM``). Clients verify the broker against ``ca.pem``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aiguillage.domain import Source

SUPER_USER = "admin"  # the cluster's super user: inter-broker traffic and applying the ACLs
HUB_PRINCIPALS = ("aiguillage-gateway", "aiguillage-worker", "aiguillage-sink", "aiguillage-admin")


def principals() -> list[str]:
    """Every SCRAM user of a secured local cluster: the super user, the hub's processes
    (``aiguillage acls``) and one per partner."""
    return [SUPER_USER, *HUB_PRINCIPALS, *(f"partenaire-{s.value}" for s in Source)]


def new_passwords() -> dict[str, str]:
    return {name: secrets.token_urlsafe(18) for name in principals()}


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Aiguillage (local test cluster)"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def make_certificates(directory: Path, days: int = 825) -> tuple[Path, Path]:
    """Write ``ca.pem`` and ``broker.pem`` (the broker's key, then its certificate and the CA)
    under ``directory``; return both paths. The keys never leave the directory (mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Aiguillage local CA")).issuer_name(_name("Aiguillage local CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([
            x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, broker_file = directory / "ca.pem", directory / "broker.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    broker_file.touch(mode=0o600)
    broker_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(pem) + ca.public_bytes(pem)
    )
    return ca_file, broker_file
