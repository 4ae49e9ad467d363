"""`aiguillage acls`: each partner writes its own ingress topic only; the hub's clients get what they use."""

from __future__ import annotations

import shlex

import pytest
from typer.testing import CliRunner

from aiguillage import topics
from aiguillage.acls import Acl, hub_acls, partner_principal
from aiguillage.cli import app
from aiguillage.domain import Source

ALL_TOPICS = [t.name for t in topics.hub_topics()] + ["aiguillage-assures-changelog"]
RULES = hub_acls("aiguillage")


def allowed(principal: str, operation: str, resource: str, name: str) -> bool:
    return any(a.principal == principal and a.allows(operation, resource, name) for a in RULES)


@pytest.mark.parametrize("source", list(Source))
def test_a_partner_may_write_its_own_ingress_topic_and_no_other_topic(source):
    p = partner_principal(source)
    assert [t for t in ALL_TOPICS if allowed(p, "Write", "topic", t)] == [topics.entrants(source)]


@pytest.mark.parametrize("source", list(Source))
def test_a_partner_reads_only_its_own_retours(source):
    p = partner_principal(source)
    assert [t for t in ALL_TOPICS if allowed(p, "Read", "topic", t)] == [topics.retours(source)]


def test_the_worker_reads_ingress_and_writes_its_outputs_and_faust_internal_topics():
    w = "User:aiguillage-worker"
    assert all(allowed(w, "Read", "topic", topics.entrants(s)) for s in Source)
    for t in [topics.AFFECTATIONS, topics.REJETES, topics.AGREGATS, *(topics.retours(s) for s in Source)]:
        assert allowed(w, "Write", "topic", t), t
    assert not any(allowed(w, "Write", "topic", topics.entrants(s)) for s in Source)
    assert not allowed(w, "Read", "topic", topics.AFFECTATIONS)  # its life cycle reads them packed
    assert allowed(w, "Read", "topic", "aiguillage-affectations")
    assert allowed(w, "Read", "group", "aiguillage")
    for op in ("Create", "Read", "Write"):
        assert allowed(w, op, "topic", "aiguillage-assures-changelog")


def test_sinks_read_their_topics_join_their_groups_and_write_only_the_dlq():
    s = "User:aiguillage-sink"
    assert allowed(s, "Read", "topic", topics.AFFECTATIONS)
    assert allowed(s, "Read", "group", "aiguillage-sink-affectations")  # Sink.group_id
    assert [t for t in ALL_TOPICS if allowed(s, "Write", "topic", t)] == [topics.REJETES]


def test_the_gateway_writes_ingress_and_reads_nothing():
    g = "User:aiguillage-gateway"
    assert all(allowed(g, "Write", "topic", topics.entrants(s)) for s in Source)
    assert not any(allowed(g, "Read", "topic", t) for t in ALL_TOPICS)


def test_prefixed_rules_match_by_prefix_only():
    acl = Acl("User:x", ("Read",), "group", "aiguillage-sink-", "prefixed")
    assert acl.allows("Read", "group", "aiguillage-sink-suivis")
    assert not acl.allows("Read", "group", "aiguillage")


def test_the_command_prints_one_kafka_acls_line_per_rule():
    result = CliRunner().invoke(app, ["acls", "--bootstrap", "kafka:9093", "--worker-id", "hub"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("#")]
    assert len(lines) == len(hub_acls("hub"))
    cpam = shlex.split(next(line for line in lines if "User:partenaire-cpam" in line and "Write" in line))
    assert cpam[:5] == ["kafka-acls.sh", "--bootstrap-server", "kafka:9093", "--command-config", "admin.properties"]
    assert cpam[cpam.index("--topic") + 1] == "signalements.entrants.cpam"
    assert "--group hub --resource-pattern-type literal" in result.output
