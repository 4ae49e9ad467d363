"""``aiguillage acls``: the Kafka ACLs that isolate the partners and limit the hub's own clients.

Each partner's principal may write its own ingress topic and nothing else (and read its
own ``retours.<source>``, the loop closure meant for it alone). The hub's principals get
what their process does: the gateway writes, the worker reads ingress and writes its
outputs and Faust's internal topics, the sinks read and write only the DLQ.
Printed as ``kafka-acls.sh`` commands to review, then run with an admin's credentials; or
applied at once (``--apply``) by this process, as the admin principal of AIGUILLAGE_SASL_*.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import typer
from aiokafka import AIOKafkaClient
from aiokafka.protocol.admin import CreateAclsRequest

from aiguillage import topics
from aiguillage.domain import Source


@dataclass(frozen=True)
class Acl:
    principal: str
    operations: tuple[str, ...]
    resource: str  # topic | group
    name: str
    pattern: str = "literal"  # literal | prefixed

    def allows(self, operation: str, resource: str, name: str) -> bool:
        if operation not in self.operations or resource != self.resource:
            return False
        return name == self.name if self.pattern == "literal" else name.startswith(self.name)


def partner_principal(source: Source, prefix: str = "User:partenaire-") -> str:
    return f"{prefix}{source.value}"


def hub_acls(worker_id: str, partner_prefix: str = "User:partenaire-", hub_prefix: str = "User:aiguillage-") -> list[Acl]:
    write, read = ("Write", "Describe"), ("Read", "Describe")
    entrants = [topics.entrants(s) for s in Source]
    retours = [topics.retours(s) for s in Source]
    rules: list[Acl] = []
    for s in Source:
        p = partner_principal(s, partner_prefix)
        rules += [
            Acl(p, write, "topic", topics.entrants(s)),
            Acl(p, read, "topic", topics.retours(s)),
            Acl(p, ("Read",), "group", f"partenaire-{s.value}", "prefixed"),
        ]

    gateway = f"{hub_prefix}gateway"
    rules += [Acl(gateway, write, "topic", t) for t in [*entrants, topics.REJETES, topics.SUIVIS, topics.AUDIT]]

    worker = f"{hub_prefix}worker"
    # Not affectations: the life cycle reads them packed, from its own "<app id>-affectations".
    rules += [Acl(worker, read, "topic", t) for t in [*entrants, topics.SUIVIS]]
    rules += [Acl(worker, write, "topic", t) for t in [topics.AFFECTATIONS, topics.REJETES, topics.AGREGATS, *retours]]
    rules += [
        Acl(worker, ("Read",), "group", worker_id),
        # Faust's own topics (changelogs, repartitions, assignor leader) are named "<app id>-...".
        Acl(worker, ("Create", "Read", "Write", "Describe", "DescribeConfigs"), "topic", f"{worker_id}-", "prefixed"),
    ]

    sink = f"{hub_prefix}sink"
    rules += [Acl(sink, read, "topic", t) for t in [topics.AFFECTATIONS, topics.SUIVIS, topics.AGREGATS, topics.AUDIT, *retours]]
    rules += [
        Acl(sink, write, "topic", topics.REJETES),  # what the database refuses for good goes to the DLQ
        Acl(sink, ("Read",), "group", f"{worker_id}-sink-", "prefixed"),
    ]

    admin = f"{hub_prefix}admin"  # `aiguillage topics create`
    rules += [Acl(admin, ("Create", "Describe", "DescribeConfigs"), "topic", t.name) for t in topics.hub_topics()]
    return rules


# Kafka's wire codes (org.apache.kafka.common.acl / resource): what CreateAcls carries.
RESOURCE_TYPES = {"topic": 2, "group": 3}
PATTERN_TYPES = {"literal": 3, "prefixed": 4}
OPERATIONS = {"Read": 3, "Write": 4, "Create": 5, "Describe": 8, "DescribeConfigs": 10}
ALLOW = 3


class AclRefused(RuntimeError):
    """The cluster refused an ACL (no authorizer, or the principal may not alter ACLs)."""


async def apply_acls(rules: list[Acl], **client_kwargs: Any) -> int:
    """Create every rule on the cluster (CreateAcls is idempotent); return how many bindings."""
    client = AIOKafkaClient(client_id="aiguillage-acls", **client_kwargs)
    await client.bootstrap()
    try:
        done = 0
        for acl in rules:
            for operation in acl.operations:
                request = CreateAclsRequest(RESOURCE_TYPES[acl.resource], acl.name, PATTERN_TYPES[acl.pattern],
                                            acl.principal, "*", OPERATIONS[operation], ALLOW)
                response = await client.send(client.get_random_node(), request)
                for code, message in response.creation_responses:
                    if code:
                        raise AclRefused(f"{acl.principal} {operation} on {acl.resource} {acl.name}: "
                                         f"error {code} {message or ''}".strip())
                done += 1
        return done
    finally:
        await client.close()


def kafka_acls_command(acl: Acl, bootstrap: str, command_config: str) -> str:
    ops = " ".join(f"--operation {op}" for op in acl.operations)
    return (
        f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {command_config} --add "
        f"--allow-principal {acl.principal} {ops} --{acl.resource} {acl.name} "
        f"--resource-pattern-type {acl.pattern}"
    )


def acls(
    bootstrap: str = typer.Option("kafka:9092", help="The Kafka cluster to apply them to."),
    command_config: str = typer.Option(
        "admin.properties", help="Client properties of an admin principal (SASL/TLS) for kafka-acls.sh."
    ),
    worker_id: str = typer.Option(None, help="Consumer group of the workers (default AIGUILLAGE_WORKER_ID)."),
    partner_prefix: str = typer.Option("User:partenaire-", help="Partners' principals: <prefix><source>."),
    hub_prefix: str = typer.Option("User:aiguillage-", help="Hub principals: <prefix>gateway|worker|sink|admin."),
    apply: bool = typer.Option(False, "--apply", help="Create them on AIGUILLAGE_BROKER now, as the principal of "
                               "AIGUILLAGE_SASL_USERNAME (a super user), instead of printing commands."),
) -> None:
    """Print the kafka-acls.sh commands isolating the partners (each writes its own ingress
    topic only) and giving the hub's gateway, worker, sinks and admin what they need.

    Example:  aiguillage acls --bootstrap kafka:9093 --command-config admin.properties > acls.sh
    """
    from aiguillage.config import read_settings
    from aiguillage.security import kafka_client_kwargs

    settings = read_settings()
    group = worker_id or settings.worker_id
    if apply:
        if not settings.broker:
            typer.echo("error: --apply needs AIGUILLAGE_BROKER (and the admin's AIGUILLAGE_SASL_*)", err=True)
            raise typer.Exit(2)
        try:
            n = asyncio.run(apply_acls(hub_acls(group, partner_prefix, hub_prefix),
                                       bootstrap_servers=settings.bootstrap_servers(), **kafka_client_kwargs(settings)))
        except AclRefused as exc:
            typer.echo(f"error: the cluster refused an ACL: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{n} ACL bindings applied to {settings.bootstrap_servers()}")
        return
    principal = None
    for acl in hub_acls(group, partner_prefix, hub_prefix):
        if acl.principal != principal:
            principal = acl.principal
            typer.echo(f"# {principal}")
        typer.echo(kafka_acls_command(acl, bootstrap, command_config))
