"""The ``aiguillage`` command line (Typer). Every command has an example in its ``--help``."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from aiguillage import acls
from aiguillage.cli import audit, bilan, demo, partenaires
from aiguillage.cli.kafka import app as kafka_app
from aiguillage.cli.routing import app as routing_app
from aiguillage.config import MissingSecret, Settings, read_settings
from aiguillage.schema_registry import SchemaRegistryError, make_codec

DATA_DIR = Path("var")  # `aiguillage up`'s logs (and SQLite file) by default

app = typer.Typer(
    help="Aiguillage: route signalements from partners to caseworker queues.\n\n"
    "Start everything on this machine:  aiguillage up",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
topics_app = typer.Typer(help="Kafka topics of the hub.", no_args_is_help=True)
db_app = typer.Typer(help="The SQL database of the sinks.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")
app.add_typer(routing_app, name="routing")
app.add_typer(kafka_app, name="kafka")
partenaires.register(app)  # ingest, dlq, tokens
app.command("acls")(acls.acls)
app.command("audit")(audit.audit)

console = Console(stderr=True)


def _settings() -> Settings:
    return read_settings()


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _logging(settings: Settings, process: str) -> None:
    """The process's log lines and, when OTEL_EXPORTER_OTLP_ENDPOINT is set, its traces."""
    from aiguillage import logs, tracing

    logs.configure(settings.log_level, settings.log_format, process)
    tracing.configurer(process)


@app.command()
def up(
    port: int = typer.Option(8080, help="HTTP port of the gateway, read side and dashboard."),
    data_dir: Annotated[Path, typer.Option(help="Where logs (and the SQLite file by default) go.")] = DATA_DIR,
    demo: bool = typer.Option(False, "--demo", help="Add simulated partners and caseworkers (a year in 10 minutes)."),
) -> None:
    """Run the whole hub on this machine: embedded broker (unless AIGUILLAGE_BROKER is set),
    routing worker, partner gateway and SQL sink. Ctrl-C stops everything cleanly.

    Example:  aiguillage up --port 8080
    """
    from aiguillage.up import Terminal, run_up

    sys.exit(run_up(port=port, data_dir=data_dir, console=Terminal(stderr=True), demo=demo))


@app.command()
def worker() -> None:
    """Run the Faust routing worker (needs AIGUILLAGE_BROKER, AIGUILLAGE_DLQ_KEY).

    Example:  AIGUILLAGE_BROKER=kafka://127.0.0.1:9092 aiguillage worker
    """
    settings = _settings()
    if not settings.broker:
        _fail("AIGUILLAGE_BROKER is not set (e.g. kafka://127.0.0.1:9092)")
    try:
        from streams.worker import run

        run(settings)
    except (MissingSecret, SchemaRegistryError) as exc:
        _fail(str(exc))


@app.command()
def gateway(
    host: str = typer.Option(None, help="Address to listen on (default AIGUILLAGE_HTTP_HOST)."),
    port: int = typer.Option(None, help="Port (default AIGUILLAGE_HTTP_PORT)."),
) -> None:
    """Run the HTTP side: partner gateway, queues, health and metrics.

    Example:  aiguillage gateway --port 8080
    """
    import uvicorn

    from aiguillage.http.app import drain_on_signal, make_api

    settings = _settings()
    if not settings.broker:
        _fail("AIGUILLAGE_BROKER is not set (e.g. kafka://127.0.0.1:9092)")
    try:
        api = make_api(settings)
    except (MissingSecret, SchemaRegistryError) as exc:
        _fail(str(exc))
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the previous handler:
    # make that one a clean exit, so a requested stop ends with status 0 like the other processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    drain_on_signal(api)
    _logging(settings, "gateway")
    uvicorn.run(
        api,
        host=host or settings.http_host,
        port=port or settings.http_port,
        log_level="warning",
        log_config=None,  # ours (aiguillage/logs.py), set above
        access_log=False,
    )


@app.command()
def sink(name: str = typer.Argument("affectations", help="Which sink: affectations, suivis, agregats, retours.")) -> None:
    """Run a SQL sink: consume its topic, upsert into AIGUILLAGE_DATABASE_URL, commit after.

    Example:  AIGUILLAGE_DATABASE_URL=postgresql+psycopg://localhost/test aiguillage sink affectations
    """
    from sinks import db
    from sinks.registry import SINKS

    settings = _settings()
    if name not in SINKS:
        _fail(f"unknown sink {name!r}; expected one of {sorted(SINKS)}")
    if not settings.broker:
        _fail("AIGUILLAGE_BROKER is not set (e.g. kafka://127.0.0.1:9092)")
    _logging(settings, f"sink-{name}")
    try:
        dlq_key = settings.require_dlq_key()
        codec = make_codec(settings)
    except (MissingSecret, SchemaRegistryError) as exc:
        _fail(str(exc))
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    instance = SINKS[name](
        settings.bootstrap_servers(),
        engine,
        dlq_key,
        codec=codec,
        group_prefix=settings.worker_id,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, instance.stop)
        surveillance = asyncio.create_task(surveiller_sink(settings, engine))
        try:
            await instance.run()
        finally:
            surveillance.cancel()

    asyncio.run(main())


async def surveiller_sink(settings: Settings, engine: Any) -> None:
    """A sink's /metrics, /healthz, /readyz (the broker, its database, the registry) on
    AIGUILLAGE_METRICS_PORT (its lag is read by the gateway, from outside)."""
    from aiguillage import ops
    from aiguillage.security import kafka_client_kwargs

    if not settings.metrics_port:
        return
    checks = {"broker": ops.broker(settings.bootstrap_servers(), **kafka_client_kwargs(settings)),
              "database": ops.database(engine)}
    if settings.schema_registry:
        checks["schema-registry"] = ops.registry(settings.schema_registry)
    runner = await ops.serve(settings.metrics_port, checks, host=settings.http_host)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


@topics_app.command("create")
def topics_create(
    partitions: int = typer.Option(None, help="Partitions per topic (default AIGUILLAGE_PARTITIONS)."),
) -> None:
    """Create the hub's topics that do not exist yet (safe to run again).

    Example:  AIGUILLAGE_BROKER=kafka://127.0.0.1:9092 aiguillage topics create
    """
    from aiguillage.topics import create_topics

    settings = _settings()
    if not settings.broker:
        _fail("AIGUILLAGE_BROKER is not set (e.g. kafka://127.0.0.1:9092)")
    created = asyncio.run(create_topics(
        settings.bootstrap_servers(), partitions or settings.partitions, settings.replication
    ))
    console.print(f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else ", all were there"))


@topics_app.command("list")
def topics_list() -> None:
    """List the hub's topics with the schema each carries.

    Example:  aiguillage topics list
    """
    from aiguillage.topics import hub_topics

    for t in hub_topics():
        typer.echo(f"{t.name}\t{t.value_schema or '-'}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to AIGUILLAGE_DATABASE_URL.

    Example:  AIGUILLAGE_DATABASE_URL=sqlite:///aiguillage.db aiguillage db upgrade
    """
    from sinks import db

    settings = _settings()
    db.upgrade(settings.database_url)
    console.print(f"database at head: {settings.database_url.split('@')[-1]}")


bilan.register(app)
demo.register(app)


def main() -> None:
    app()


from aiguillage.bench.cli import bench  # the bench lives in its own package

app.command()(bench)
