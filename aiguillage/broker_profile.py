"""Which client settings each broker gets: Kafka's on Apache Kafka, the workarounds on the embedded one.

The embedded broker (Tansu, ``aiguillage up``) has quirks measured in DESIGN.md: no
InitProducerId (so no idempotent producer), a ListOffsets(latest) that under-reports the end of
a partition, fetches held for the whole fetch wait, and a slow group join with Kafka's
timeouts. Each workaround lives in ``EMBEDDED`` and nowhere else; ``KAFKA`` is the production
path, with idempotent producers (``acks=all``) and Kafka's usual group timeouts.
``tests/test_broker_profile.py`` states both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aiguillage.config import Settings


@dataclass(frozen=True)
class BrokerProfile:
    name: str
    idempotent_producers: bool  # retries never write a record twice (needs InitProducerId)
    true_end_offsets: bool  # recovery checks the end offsets by a fetch (aiguillage/embedded/ends.py)
    fetch_max_wait_ms: int | None  # None: Faust's own (1,500 ms; a fetch returns at the first record on Kafka)
    session_timeout: float  # seconds before a silent group member is dropped
    heartbeat_interval: float
    rebalance_timeout: float

    def producer_settings(self) -> dict[str, object]:
        """What every aiokafka producer of the hub adds to its arguments."""
        return {"acks": "all", "enable_idempotence": self.idempotent_producers}

    def group_settings(self) -> dict[str, int]:
        """What every aiokafka consumer in a group (the sinks) adds to its arguments."""
        return {"session_timeout_ms": int(self.session_timeout * 1000),
                "heartbeat_interval_ms": int(self.heartbeat_interval * 1000)}


# Kafka's own defaults for the classic group protocol (session.timeout.ms 45 s, heartbeat 3 s),
# and Faust's rebalance timeout.
KAFKA = BrokerProfile(
    name="kafka", idempotent_producers=True, true_end_offsets=False, fetch_max_wait_ms=None,
    session_timeout=45.0, heartbeat_interval=3.0, rebalance_timeout=60.0,
)

# Measured on Tansu (issue 8): a 50 ms fetch wait (it holds every fetch for the whole wait), and
# short group timeouts (a join took ~30 s with Kafka's).
EMBEDDED = BrokerProfile(
    name="embedded", idempotent_producers=False, true_end_offsets=True, fetch_max_wait_ms=50,
    session_timeout=10.0, heartbeat_interval=1.0, rebalance_timeout=10.0,
)


def profile(settings: Settings) -> BrokerProfile:
    """The profile of the broker ``settings`` name; AIGUILLAGE_GROUP_SESSION_TIMEOUT overrides the
    session timeout (a shorter one moves a dead worker's partitions sooner)."""
    chosen = EMBEDDED if settings.embedded_broker else KAFKA
    if settings.group_session_timeout is not None:
        timeout = settings.group_session_timeout
        chosen = replace(chosen, session_timeout=timeout, heartbeat_interval=min(chosen.heartbeat_interval, timeout / 3))
    return chosen
