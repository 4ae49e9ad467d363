"""docker-compose.yml, checked without Docker: every service the README's "Deployment" names is
there, wired to the others by the right environment variables, started in the right order."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aiguillage.cli import app
from aiguillage.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict] = COMPOSE["services"]
HUB = {name: s for name, s in SERVICES.items() if str(s.get("image", "")).startswith("aiguillage:")}
SINKS = ["affectations", "suivis", "agregats", "retours", "audit"]
# Settings that other issues add to aiguillage/config.py (compose already passes them).
FROM_OTHER_ISSUES = {"AIGUILLAGE_TOKENS_FILE"}  # issue 3, the partner-token file
SECRET = re.compile(r"PASSWORD|_KEY$|SECRET|TOKEN$")
REQUIRED = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+):\?[^}]+\}$")  # ${VAR:?message}: no default, no clear value
INTERPOLATION = re.compile(r"\$\{(?P<var>[A-Z0-9_]+)(?::(?P<op>[?-])(?P<arg>[^}]*))?\}")


def interpolate(value: str, environ: dict[str, str]) -> str:
    """What compose does with ${VAR}, ${VAR:-default} and ${VAR:?error} (refuses when unset)."""

    def one(m: re.Match[str]) -> str:
        if environ.get(m["var"]):
            return environ[m["var"]]
        if m["op"] == "?":
            raise LookupError(f"{m['var']}: {m['arg']}")
        return m["arg"] or ""

    return INTERPOLATION.sub(one, value)


def readme_services() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Deployment", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.MULTILINE)


def env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def depends(service: str) -> dict[str, str]:
    return {k: v["condition"] for k, v in (SERVICES[service].get("depends_on") or {}).items()}


def kafka_address() -> str:
    advertised = env("kafka")["KAFKA_ADVERTISED_LISTENERS"]
    return next(lsn.split("://", 1)[1] for lsn in advertised.split(",") if lsn.startswith("PLAINTEXT://"))


def test_the_readme_and_the_compose_file_name_the_same_services():
    assert readme_services(), "the README's Deployment section has no table of services"
    assert sorted(readme_services()) == sorted(SERVICES)


def test_kafka_runs_in_kraft_mode_with_a_health_check():
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    roles = env("kafka")["KAFKA_PROCESS_ROLES"].split(",")
    assert set(roles) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in env("kafka"))
    assert env("kafka")["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env('kafka')['KAFKA_NODE_ID']}@kafka:9093"
    assert kafka_address().split(":")[0] == "kafka"
    assert "healthcheck" in kafka


@pytest.mark.parametrize("name", sorted(set(HUB) - {"migrate"}))
def test_every_hub_process_reaches_the_kafka_service_after_it_is_healthy(name):
    assert env(name)["AIGUILLAGE_BROKER"] == f"kafka://{kafka_address()}"
    assert depends(name)["kafka"] == "service_healthy"


@pytest.mark.parametrize("name", sorted(set(HUB) - {"topics", "migrate"}))
def test_every_process_that_encodes_uses_the_schema_registry_service(name):
    url = urllib.parse.urlsplit(env(name)["AIGUILLAGE_SCHEMA_REGISTRY"])
    registry = SERVICES[url.hostname]
    assert "schema-registry" in registry["image"] or "karapace" in registry["image"]
    assert env(url.hostname)["SCHEMA_REGISTRY_LISTENERS"].endswith(f":{url.port}")
    assert env(url.hostname)["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"].endswith(kafka_address())
    assert depends(name)["schema-registry"] == "service_healthy"
    assert depends(name)["topics"] == "service_completed_successfully"


@pytest.mark.parametrize("name", ["gateway", "migrate", *(f"sink-{s}" for s in SINKS)])
def test_every_process_that_touches_sql_uses_the_postgres_service(name):
    dotenv = {"POSTGRES_PASSWORD": "0123abcd"}
    with pytest.raises(LookupError, match="POSTGRES_PASSWORD"):  # compose refuses to start without it
        interpolate(env(name)["AIGUILLAGE_DATABASE_URL"], {})
    url = urllib.parse.urlsplit(interpolate(env(name)["AIGUILLAGE_DATABASE_URL"], dotenv))
    pg = {k: interpolate(v, dotenv) for k, v in env("postgres").items()}
    assert url.scheme == "postgresql+psycopg"
    assert (url.hostname, url.port, url.path) == ("postgres", 5432, f"/{pg['POSTGRES_DB']}")
    # The password is the one postgres was given, from .env, never in clear in the file.
    assert (url.username, url.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
    assert depends(name)["postgres"] == "service_healthy"
    if name != "migrate":
        assert depends(name)["migrate"] == "service_completed_successfully"


def test_the_worker_runs_several_replicas_in_one_group():
    worker = SERVICES["worker"]
    assert worker["command"] == ["worker"]
    assert int(worker["deploy"]["replicas"]) >= 2
    assert "container_name" not in worker and "ports" not in worker  # would forbid --scale
    assert "AIGUILLAGE_WORKER_ID" in env("worker")


def test_one_sink_service_per_sink_and_the_one_shot_steps():
    for sink in SINKS:
        assert SERVICES[f"sink-{sink}"]["command"] == ["sink", sink]
    assert SERVICES["topics"]["command"] == ["topics", "create"]
    assert SERVICES["migrate"]["command"] == ["db", "upgrade"]
    for once in ("topics", "migrate"):
        assert SERVICES[once]["restart"] == "no"
    # Topics are created with the partitions and replication the workers declare theirs with.
    for var in ("AIGUILLAGE_PARTITIONS", "AIGUILLAGE_REPLICATION", "AIGUILLAGE_WORKER_ID"):
        assert env("topics")[var] == env("worker")[var]


def test_every_health_condition_waits_on_a_service_that_has_a_health_check():
    for name in SERVICES:
        for dep, condition in depends(name).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep} to be healthy: it has no check"
            elif condition == "service_completed_successfully":
                assert SERVICES[dep]["restart"] == "no", f"{dep} is awaited to exit but restarts"


def test_the_gateway_is_published_and_checked_on_readyz():
    gateway = SERVICES["gateway"]
    assert env("gateway")["AIGUILLAGE_HTTP_HOST"] == "0.0.0.0"
    assert any(str(p).endswith(f":{env('gateway')['AIGUILLAGE_HTTP_PORT']}") for p in gateway["ports"])
    assert f"127.0.0.1:{env('gateway')['AIGUILLAGE_HTTP_PORT']}/readyz" in " ".join(gateway["healthcheck"]["test"])
    assert env("gateway")["AIGUILLAGE_TOKENS_FILE"] == f"/run/secrets/{gateway['secrets'][0]}"


@pytest.mark.parametrize("name", ["worker", *(f"sink-{s}" for s in SINKS)])
def test_workers_and_sinks_serve_their_probes_where_prometheus_and_the_health_check_look(name):
    port = env(name)["AIGUILLAGE_METRICS_PORT"]
    assert env(name)["AIGUILLAGE_HTTP_HOST"] == "0.0.0.0"
    assert f"127.0.0.1:{port}/readyz" in " ".join(SERVICES[name]["healthcheck"]["test"])
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    targets = {t for job in scrape["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    targets |= {f"{n}:{sd['port']}" for job in scrape["scrape_configs"] for sd in job.get("dns_sd_configs", [])
                for n in sd["names"]}
    assert f"{name}:{port}" in targets
    assert "gateway:8080" in targets


def test_prometheus_and_grafana_are_optional():
    for name in ("prometheus", "grafana"):
        assert SERVICES[name]["profiles"] == ["observabilite"]
    assert not any("profiles" in service for service in HUB.values())


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_secret_is_written_in_clear(name):
    for var, value in env(name).items():
        if SECRET.search(var):
            match = REQUIRED.match(value)
            assert match and match["var"] == var, f"{name}: {var} must be ${{{var}:?...}}"


@pytest.mark.parametrize("name", sorted(HUB))
def test_hub_processes_are_configured_only_by_known_settings(name):
    known = {f"AIGUILLAGE_{f.upper()}" for f in Settings.model_fields} | FROM_OTHER_ISSUES
    assert set(env(name)) - known == set()


@pytest.mark.parametrize("name", sorted(HUB))
def test_each_hub_command_exists_in_the_cli(name):
    result = CliRunner().invoke(app, [*SERVICES[name]["command"], "--help"])
    assert result.exit_code == 0, result.output


def test_the_image_runs_the_cli_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["aiguillage"]' in dockerfile
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.MULTILINE)
    assert "psycopg" in dockerfile  # PostgreSQL driver in the production image


def test_the_env_example_lists_every_variable_compose_requires():
    lines = (ROOT / "docker-compose.yml").read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    example = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(encoding="utf-8"), re.MULTILINE))
    assert required <= example


# Keys of the Compose Specification (compose-spec/compose-spec, schema/compose-spec.json) that a
# service here may use: a typo would be ignored by YAML but refused by `docker compose`.
SERVICE_KEYS = {
    "build", "command", "container_name", "depends_on", "deploy", "entrypoint", "env_file",
    "environment", "expose", "healthcheck", "image", "init", "labels", "logging", "networks",
    "ports", "profiles", "read_only", "restart", "secrets", "stop_grace_period", "stop_signal",
    "tmpfs", "user", "volumes", "working_dir",
}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_use_only_compose_specification_keys(name):
    service = SERVICES[name]
    assert set(service) <= SERVICE_KEYS
    assert set(service.get("healthcheck", {})) <= HEALTHCHECK_KEYS
    assert set(depends(name).values()) <= CONDITIONS
    assert all(isinstance(v, str | int | float | bool) for v in (service.get("environment") or {}).values())
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("./"):  # a bind mount of this repository's deploy/ files
            assert source.startswith("./deploy/") and (ROOT / source).exists(), volume
        else:
            assert source in COMPOSE["volumes"], volume
    for secret in service.get("secrets", []):
        assert secret in COMPOSE["secrets"]
    assert set(COMPOSE) <= {"name", "services", "volumes", "secrets", "networks", "configs"} | {
        k for k in COMPOSE if k.startswith("x-")
    }
