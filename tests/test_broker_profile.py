"""Which settings each broker gets: Kafka's on Apache Kafka, the embedded broker's workarounds on it only."""

from __future__ import annotations

import asyncio

import pytest

from aiguillage import kafka as kafka_module
from aiguillage.broker_profile import EMBEDDED, KAFKA, profile
from aiguillage.config import Settings
from streams import faust_patches
from streams.topology import make_app


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, broker="kafka://127.0.0.1:1", worker_id="aiguillage-test-profil", **kw)


def test_apache_kafka_gets_idempotent_producers_and_kafkas_group_timeouts():
    kafka = profile(_settings())
    assert kafka is KAFKA
    assert kafka.producer_settings() == {"acks": "all", "enable_idempotence": True}
    assert kafka.group_settings() == {"session_timeout_ms": 45_000, "heartbeat_interval_ms": 3_000}
    assert kafka.rebalance_timeout == 60.0
    assert kafka.fetch_max_wait_ms is None  # Faust's own
    assert not kafka.true_end_offsets


def test_the_embedded_broker_alone_gets_the_workarounds():
    embedded = profile(_settings(embedded_broker=True))
    assert embedded is EMBEDDED
    assert embedded.producer_settings() == {"acks": "all", "enable_idempotence": False}  # no InitProducerId
    assert embedded.group_settings() == {"session_timeout_ms": 10_000, "heartbeat_interval_ms": 1_000}
    assert embedded.fetch_max_wait_ms == 50
    assert embedded.true_end_offsets


def test_a_configured_session_timeout_wins_on_either_broker():
    assert profile(_settings(group_session_timeout=12)).group_settings() == {
        "session_timeout_ms": 12_000, "heartbeat_interval_ms": 3_000}
    assert profile(_settings(group_session_timeout=6, embedded_broker=True)).group_settings() == {
        "session_timeout_ms": 6_000, "heartbeat_interval_ms": 1_000}
    with pytest.raises(ValueError, match="group_session_timeout"):
        _settings(group_session_timeout=2)


@pytest.mark.parametrize("embedded", [False, True])
def test_the_worker_app_takes_its_brokers_settings(embedded):
    faust_patches.install(KAFKA)  # what the worker does first (the per-app settings are read by two patches)
    app = make_app(_settings(embedded_broker=embedded))
    expected = EMBEDDED if embedded else KAFKA
    assert app.broker_profile is expected
    assert (app.conf.broker_session_timeout, app.conf.broker_heartbeat_interval, app.conf.broker_rebalance_timeout) == (
        expected.session_timeout, expected.heartbeat_interval, expected.rebalance_timeout)
    producer = app.producer  # built, not started
    settings = {**producer._settings_default(), **producer._settings_extra()}
    assert settings["acks"] in ("all", -1)
    assert settings.get("enable_idempotence", False) is (not embedded)


def test_a_faust_app_built_elsewhere_keeps_fausts_own_producer():
    import faust

    app = faust.App("aiguillage-test-nu", broker="kafka://127.0.0.1:1", web_enabled=False)
    faust_patches.install(KAFKA)  # the patches are installed in this process
    assert app.producer._settings_extra() == {}


def test_the_gateway_and_sinks_producers_follow_the_process_broker(monkeypatch):
    for embedded in (False, True):
        monkeypatch.setattr(kafka_module, "get_settings", lambda e=embedded: _settings(embedded_broker=e))
        config = kafka_module.producer_config("127.0.0.1:1")
        assert (config["acks"], config["enable_idempotence"]) == ("all", not embedded)

        async def build(c: dict = config) -> None:  # aiokafka accepts it (built, not started)
            kafka_module.AIOKafkaProducer(**c)

        asyncio.run(build())


def test_the_embedded_workarounds_of_faust_apply_on_the_embedded_broker_only():
    chosen = {b.name: [p.name for p in faust_patches.PATCHES if p.when(b)] for b in (KAFKA, EMBEDDED)}
    assert "true-end-offsets" in chosen["embedded"] and "true-end-offsets" not in chosen["kafka"]
    assert set(chosen["embedded"]) - set(chosen["kafka"]) == {"true-end-offsets"}
