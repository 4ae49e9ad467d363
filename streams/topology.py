"""The whole data flow on one screen: the Faust app, its topics and its tables.

Values are raw bytes on the wire (Confluent-framed Avro); agents decode them with
the hub's codec so that a bad record is caught per record and dead-lettered,
instead of failing inside Faust's deserializer where it would be skipped unseen.
"""

from __future__ import annotations

import faust

from aiguillage import topics
from aiguillage.config import Settings
from aiguillage.domain import Source
from aiguillage.security import faust_credentials

# Faust hard-codes fetch_max_wait_ms=1500 for its consumer, and a broker that holds a fetch
# until that wait is over (the embedded one does, whatever fetch_min_bytes says) then adds
# up to 1.5 s to every record at low rates. Measured with `aiguillage bench` (issue 8): at
# 10 ms the idle polling of the worker's ~50 partitions cost the embedded broker 22 % of a
# core and the hub ran at 314 signalements/s; at 50 ms, 390/s with half the broker CPU.
FETCH_MAX_WAIT_MS = 50


def _short_fetch_wait() -> None:
    """Lower the fetch wait of the consumers Faust creates (there is no Faust setting for it)."""
    from faust.transport.drivers import aiokafka as driver

    create = driver.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(create, "short_fetch_wait", False):
        return

    def create_worker_consumer(self, transport):  # type: ignore[no-untyped-def]
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by the Fetcher it starts
        return consumer

    create_worker_consumer.short_fetch_wait = True  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer


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
    _short_fetch_wait()
    # Faust makes its app directory even for tables in memory ("<id>-data" in the current
    # directory by default): under data_dir, with the rest of the worker's state. It creates
    # only the last level.
    (settings.data_dir / "tables").mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.worker_id,
        broker=settings.broker,
        broker_credentials=faust_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir / "tables"),
        # Tansu has no InitProducerId: at least once, with idempotent effects downstream.
        processing_guarantee="at_least_once",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        topic_allow_declare=True,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        # Ready in seconds, not ~30 s, on the embedded broker: a short session and
        # rebalance timeout make a join (and a dead member's eviction) quick, and
        # the default 10 s pause before recovering tables starts is pointless here.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
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
        # (streams/lots.py), so it is paid once per batch, and it lets the changelog, agregats
        # and output records of a batch share produce requests instead of one each.
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        producer_acks=-1,
    )


class Topology:
    """Topics and tables of one app instance (tests build several apps in one process)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.entrants = app.topic(*(topics.entrants(s) for s in Source), internal=False)
        self.affectations = app.topic(topics.AFFECTATIONS, internal=False)
        self.rejetes = app.topic(topics.REJETES, internal=False)
        self.retours = {s: app.topic(topics.retours(s), internal=False) for s in Source}
        self.agregats = app.topic(topics.AGREGATS, internal=False)
        self.suivis = app.topic(topics.SUIVIS, internal=False)
        # Routing state (streams/etat.py explains the keys and why each lives where it does).
        from streams.etat import declarer

        declarer(self)
