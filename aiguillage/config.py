"""One place for configuration: environment variables prefixed ``AIGUILLAGE_``, read once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Store = Literal["memory://", "rocksdb://"]  # where a worker's tables live
STORES: tuple[str, ...] = get_args(Store)


class MissingSecret(RuntimeError):
    """A secret the process needs is not in the environment."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIGUILLAGE_", extra="ignore")

    broker: str | None = Field(
        default=None,
        description="kafka://host:9092[,host2:9092]; unset = the embedded broker (aiguillage up only)",
    )
    database_url: str = Field(default="sqlite:///aiguillage.db", description="SQLAlchemy URL")
    pseudonym_key: SecretStr | None = Field(
        default=None, description="secret key of the HMAC-SHA256 NIR pseudonym"
    )
    dlq_key: SecretStr | None = Field(
        default=None, description="AES-GCM key (hex, 32 bytes) for payloads kept in the DLQ"
    )
    partitions: int = Field(default=4, ge=1, description="partitions of the hub's topics")
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    tokens_file: Path | None = Field(
        default=None, description="partner-token file (hashed bearer tokens); unset = data_dir/tokens.json"
    )
    data_dir: Path = Path("var")
    store: Store = Field(
        default="memory://",
        description="where the workers' tables live: memory:// (fast; rebuilt from the changelogs at start) "
        "or rocksdb:// (on disk under data_dir/tables: memory no longer grows with the open signalements, "
        "only with the waiting files; one data_dir per worker)",
    )
    worker_id: str = "aiguillage"
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop", description="the worker's event loop: uvloop (libuv; less CPU per record) or "
        "asyncio (the standard library's)",
    )
    embedded_broker: bool = Field(
        default=False, description="set by `aiguillage up` on its embedded broker: works around its quirks"
    )
    group_session_timeout: float | None = Field(
        default=None, ge=6.0, le=300.0,
        description="seconds before a silent worker or sink leaves its consumer group (its partitions "
        "go to the others); unset = 45 on Kafka, 10 on the embedded broker",
    )
    purge_apres_jours: int = Field(
        default=90, ge=0, le=3650,
        description="days after its closure that a signalement's life-cycle entry is forgotten (its figures "
        "archived): a resend or late suivi within them is still recognised",
    )
    entretien_intervalle: float = Field(
        default=3600.0, gt=0, description="seconds between two sweeps of the dedup entries past their horizon",
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535,
        description="port of /metrics, /healthz and /readyz for the worker and the sinks (the gateway serves "
        "them on its own port); unset: none (under `aiguillage up` the gateway serves every process's metrics)",
    )
    lag_intervalle: float = Field(
        default=15.0, gt=0, description="seconds between two readings of the consumer lag of the hub's groups "
        "(by the gateway, from outside the consumers)",
    )
    resend_timeout: float = Field(
        default=30.0, gt=0, le=600,
        description="seconds an agent sends an output again when the broker did not acknowledge it, before "
        "it dead-letters the record that produced it",
    )
    outbox: Path | None = Field(
        default=None, description="set by `aiguillage up` on its embedded broker: the gateway keeps "
        "what it acknowledges there first (aiguillage/embedded/outbox.py); never on Kafka",
    )
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        default="text", description="text for a person at a terminal; json: one object a line with the "
        "process, the level, the signalement id, topic, partition and offset of the record (aiguillage/logs.py)",
    )
    routing_file: Path | None = Field(
        default=None, description="routing YAML; unset = the shipped aiguillage/routing.yaml"
    )
    seuil_confidentialite: int = Field(
        default=5, ge=1, description="counts below this, in a cell narrower than a département, are masked"
    )
    echeances_intervalle: float = Field(
        default=60.0, gt=0,
        description="seconds between two scans for missed first-contact deadlines (deadlines are in days)",
    )
    agregats_intervalle: float = Field(
        default=5.0, gt=0,
        description="seconds between two publications of the live figures (each stage publishes every "
        "figure that changed since its last tick: the cost is per tick, whatever the rate)",
    )

    # Staff access (aiguillage/auth): OpenID Connect bearer JWTs checked against the provider's JWKS.
    oidc_issuer: str | None = Field(
        default=None, description="the identity provider's issuer URL (the tokens' iss); unset: no staff "
        "endpoint answers but 401 (under `aiguillage up`, its development issuer)",
    )
    oidc_audience: str = Field(default="aiguillage", description="the tokens' aud that this hub accepts")
    oidc_jwks_url: str | None = Field(
        default=None, description="the JWKS URL; unset: jwks_uri of <issuer>/.well-known/openid-configuration",
    )
    oidc_leeway: float = Field(default=30.0, ge=0, le=600, description="seconds of clock skew allowed on exp/nbf/iat")
    oidc_roles_claim: str = Field(
        default="aiguillage_roles", description="the claim holding the habilitations (aiguillage/auth/droits.py)",
    )
    oidc_dev_jwks: Path | None = Field(
        default=None, description="set by `aiguillage up` only: the public JWKS of its development issuer, "
        "served by the gateway under /dev-oidc/",
    )
    metrics_public: bool = Field(default=True, description="false: /metrics needs an admin token")
    limite_partenaire: float = Field(
        default=20.0, ge=0, description="requests per second allowed to each partner token (token bucket; 0: no limit)",
    )
    limite_partenaire_rafale: int = Field(
        default=40, ge=1, description="the bucket's size: requests a partner token may send at once",
    )

    # Production (docker-compose.yml, README "Deployment"): a Confluent-compatible registry
    # and Kafka client security, applied to every client by aiguillage/security.py.
    replication: int = Field(
        default=1, ge=1, description="replication factor of the hub's topics and Faust's (3 on a cluster)"
    )
    schema_registry: str | None = Field(
        default=None, description="http(s)://host:8081 of a Schema Registry; unset = local schemas only"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(default=None, description="CA bundle (PEM) to verify the brokers")
    ssl_certfile: Path | None = Field(default=None, description="client certificate (PEM), mutual TLS")
    ssl_keyfile: Path | None = Field(default=None, description="client private key (PEM)")
    ssl_key_password: SecretStr | None = None

    def require_pseudonym_key(self) -> bytes:
        if self.pseudonym_key is None or not self.pseudonym_key.get_secret_value():
            raise MissingSecret(
                "AIGUILLAGE_PSEUDONYM_KEY is not set: the NIR cannot be pseudonymised without it"
            )
        return self.pseudonym_key.get_secret_value().encode()

    def require_dlq_key(self) -> bytes:
        raw = self.dlq_key.get_secret_value() if self.dlq_key else ""
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            key = b""
        if len(key) not in (16, 24, 32):
            raise MissingSecret(
                "AIGUILLAGE_DLQ_KEY must hold an AES key as hex (32, 48 or 64 hex digits)"
            )
        return key

    def tokens_path(self) -> Path:
        return self.tokens_file or self.data_dir / "tokens.json"

    def bootstrap_servers(self) -> str:
        """The broker URL as aiokafka wants it (no scheme)."""
        if not self.broker:
            raise RuntimeError("AIGUILLAGE_BROKER is not set")
        return ",".join(part.split("://", 1)[-1] for part in self.broker.split(","))


def read_settings() -> Settings:
    """The environment's settings now, completed from a running ``aiguillage up`` when they name
    no broker (aiguillage/running.py): what a CLI command reads."""
    from aiguillage.running import completed

    return completed(Settings())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """:func:`read_settings`, read once: what the clients of a long-running process read."""
    return read_settings()
