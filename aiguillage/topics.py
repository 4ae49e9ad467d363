"""The hub's topics (DESIGN.md, "Events and topics") and their idempotent creation."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from aiguillage.domain import Source
from aiguillage.security import kafka_client_kwargs

REJETES = "signalements.rejetes"
AFFECTATIONS = "affectations"
SUIVIS = "suivis"
AGREGATS = "agregats"
AUDIT = "audit"  # every read of personal rows and every change (aiguillage/auth/audit.py)


def entrants(source: Source | str) -> str:
    return f"signalements.entrants.{Source(source).value}"


def retours(source: Source | str) -> str:
    return f"retours.{Source(source).value}"


def affectations_du_cycle(app_id: str) -> str:
    """The worker's internal topic of Affectations, packed for its life cycle (streams/affectation_packets.py)."""
    return f"{app_id}-affectations"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    value_schema: str | None
    config: dict[str, str]


def hub_topics() -> list[TopicSpec]:
    specs = [TopicSpec(entrants(s), "Signalement", {}) for s in Source]
    specs += [
        TopicSpec(REJETES, "DeadLetter", {}),
        TopicSpec(AFFECTATIONS, "Affectation", {}),
        TopicSpec(SUIVIS, "Suivi", {}),
        TopicSpec(AGREGATS, "Agregat", {"cleanup.policy": "compact"}),
        # A trail is kept, never compacted: one year on the broker (the SQL table keeps it after).
        TopicSpec(AUDIT, "Audit", {"cleanup.policy": "delete", "retention.ms": str(366 * 24 * 3600 * 1000)}),
    ]
    specs += [TopicSpec(retours(s), "Retour", {}) for s in Source]
    return specs


async def create_topics(bootstrap: str, partitions: int, replication: int = 1) -> list[str]:
    """Create every hub topic that does not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="aiguillage-admin", **kafka_client_kwargs()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in hub_topics() if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t.name, partitions, replication, topic_configs=t.config) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another process raced us: the topic is there, which is all we want
        return [t.name for t in missing]
    finally:
        await admin.close()
