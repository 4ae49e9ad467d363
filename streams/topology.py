"""The whole data flow on one screen: the Faust app, its topics and its tables.

Values are raw bytes on the wire (Confluent-framed Avro); agents decode them with
the hub's codec so that a bad record is caught per record and dead-lettered,
instead of failing inside Faust's deserializer where it would be skipped unseen.
"""

from __future__ import annotations

from typing import Any

import faust

from aiguillage import topics
from aiguillage.broker_profile import profile
from aiguillage.config import Settings
from aiguillage.domain import Source
from aiguillage.kafka import Murmur2Partitioner
from aiguillage.security import faust_credentials

# RocksDB, per table and partition (each is a database of its own: ~35 per worker at 4
# partitions, and as many more with each partition added). Faust's defaults (64 MB memtables
# x 3, a 2 GB block cache) hold the whole state in memory at the bench's volumes: memory grew
# as with memory://. Small memtables and caches bound it. The block cache is per database, so
# the worker's bound is its size times the databases it holds: at 4 MB it filled to 128 MB
# over the first ~250,000 signalements (measured with `aiguillage bench --memory-check` and the
# databases' own counters, issue 8). A cache miss reads the file through the OS page cache.
ROCKSDB = {
    "write_buffer_size": 2 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 * 1024 * 1024,
    "block_cache_size": 512 * 1024,
    "max_open_files": 256,
}


def options_table() -> dict[str, object]:
    """A table's store options (a fresh dict: Faust's RocksDB store pops keys out of it)."""
    return dict(ROCKSDB)


def make_app(settings: Settings) -> faust.App:
    broker = profile(settings)
    # Faust makes its app directory even for tables in memory ("<id>-data" in the current
    # directory by default): under data_dir, with the rest of the worker's state. It creates
    # only the last level.
    (settings.data_dir / "tables").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.worker_id,
        broker=settings.broker,
        broker_credentials=faust_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir / "tables"),
        # At least once with idempotent effects downstream: no transactions (the embedded broker
        # has none, and Faust's are fragile), on Kafka too.
        processing_guarantee="at_least_once",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        topic_allow_declare=True,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        # Group timeouts by broker (aiguillage/broker_profile.py): Kafka's usual ones, or short
        # ones on the embedded broker, where a join took ~30 s with Kafka's.
        broker_session_timeout=broker.session_timeout,
        broker_heartbeat_interval=broker.heartbeat_interval,
        broker_rebalance_timeout=broker.rebalance_timeout,
        stream_recovery_delay=0.0,
        # On SIGTERM, do not wait for every buffered event to be processed (a backlog of a
        # few thousand made shutdown outlast any sane grace period): what is not processed is
        # not acked, so not committed, and the next worker replays it; effects are idempotent.
        stream_wait_empty=False,
        # Throughput (issue 8, measured with `aiguillage bench`): a commit flushes the
        # producer first, so commit on time, not every few hundred records; big fetches
        # and producer batches. (A 25 ms linger cut the embedded broker's CPU per record from
        # 200 to 58 µs on a batched copy loop; see the linger note below for why it is 0 here.)
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        broker_max_poll_records=2000,
        consumer_max_fetch_size=4 * 1024 * 1024,
        # A short linger: the routing agents await their outputs' acks once per batch
        # (streams/batches.py), so it is paid once per batch, and it lets the changelog, agregats
        # and output records of a batch share produce requests instead of one each.
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        producer_acks=-1,
        producer_partitioner=Murmur2Partitioner(),  # the default's partitions, hashed in C
    )
    app.broker_profile = broker  # type: ignore[attr-defined]  # read by two of streams/faust_patches.py's patches
    return app


class Topology:
    """Topics and tables of one app instance (tests build several apps in one process). The
    routing state's tables and internal topics are declared by :func:`streams.state.declarer`."""

    equipes: Any
    signalements: Any
    assures: Any
    charges: Any
    dossiers: Any
    assures_equipe: Any
    affectations_cycle: Any
    escalades: Any
    cycles: Any

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.entrants = app.topic(*(topics.entrants(s) for s in Source), internal=False)
        self.affectations = app.topic(topics.AFFECTATIONS, internal=False)
        self.rejetes = app.topic(topics.REJETES, internal=False)
        self.retours = {s: app.topic(topics.retours(s), internal=False) for s in Source}
        self.agregats = app.topic(topics.AGREGATS, internal=False)
        self.suivis = app.topic(topics.SUIVIS, internal=False)
        # Routing state (streams/state.py explains the keys and why each lives where it does).
        from streams.state import declarer

        declarer(self)
