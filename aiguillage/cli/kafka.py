"""``aiguillage kafka``: a local Apache Kafka (KRaft) from its Maven Central jars."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from aiguillage.kafka_local import KAFKA_VERSION, KafkaJarsError, LocalKafka, LocalKafkaError, fetch

app = typer.Typer(help="A local Apache Kafka in KRaft mode, from its Maven Central jars.", no_args_is_help=True)
console = Console(stderr=True)


@app.command("fetch")
def fetch_jars(version: str = typer.Option(KAFKA_VERSION, help="Apache Kafka version (4.x needs Java 17).")) -> None:
    """Fetch the broker's jars from Maven Central once, into ~/.cache/aiguillage/kafka-<version>/.

    Example:  aiguillage kafka fetch
    """
    try:
        typer.echo(fetch(version, say=console.print))
    except KafkaJarsError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


@app.command("up")
def kafka_up(
    nodes: Annotated[int, typer.Option(help="1, or 3 (replication 3, min.insync.replicas 2).")] = 1,
    secure: Annotated[bool, typer.Option("--secure", help="SASL_SSL + SCRAM-SHA-512 listener and ACLs enforced.")] = False,
    data: Annotated[Path, typer.Option(help="Data directory; a restart on it keeps the topics and the ports.")] = Path("var/kafka"),
    heap_mb: Annotated[int, typer.Option(help="JVM heap of each node, in MB.")] = 512,
) -> None:
    """Run a local Apache Kafka (KRaft) until Ctrl-C.

    Storage is formatted on the first start; the ports are free loopback ones, kept for the next
    start on the same --data; it is ready when its metadata answers.

    Then run the hub on it, in another terminal:

        AIGUILLAGE_BROKER=kafka://127.0.0.1:<port> aiguillage up

    Example:  aiguillage kafka up --nodes 3 --data var/kafka3
    """
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        cluster = LocalKafka(data, nodes=nodes, secure=secure, heap_mb=heap_mb)
        console.print(f"starting Apache Kafka {cluster.layout.version}, {nodes} node(s), data in {cluster.data_dir}…")
        started = time.monotonic()
        cluster.start()
    except (KafkaJarsError, LocalKafkaError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console.print(f"\n[bold green]Apache Kafka is up[/] ({time.monotonic() - started:.1f} s).", soft_wrap=True)
    console.print(f"  bootstrap   {cluster.bootstrap}", soft_wrap=True)
    console.print(f"  the hub     AIGUILLAGE_BROKER={cluster.url} aiguillage up", soft_wrap=True)
    if nodes == 3:
        console.print("              (and AIGUILLAGE_REPLICATION=3 for the hub's topics)")
    if secure:
        console.print(f"  listener    SASL_SSL, SCRAM-SHA-512; CA file {cluster.ca_file}", soft_wrap=True)
        console.print("  principals  (cluster super user: admin; ACLs: aiguillage acls)")
        for name, password in cluster.layout.passwords.items():
            console.print(f"    {name:<26}{password}", soft_wrap=True)
    console.print(f"  logs        {cluster.data_dir}/node-*/kafka.log\nCtrl-C stops it (the data stays).\n", soft_wrap=True)
    try:
        while not stopping:
            dead = [n for n, p in cluster.processes.items() if p.poll() is not None]
            if dead:
                console.print(f"[bold red]node(s) {dead} stopped unexpectedly:[/]\n{cluster.log_tail(dead[0])}")
                raise typer.Exit(1)
            time.sleep(0.5)
    finally:
        console.print("stopping Kafka…")
        cluster.stop()
        console.print("stopped.")
