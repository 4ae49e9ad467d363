"""aiguillage/embedded/outbox.py: what the gateway answers 202 for is kept first, a batch at a time."""

from __future__ import annotations

import sqlite3

import pytest

from aiguillage.embedded.outbox import Outbox


def test_a_batch_is_kept_whole_in_order_or_not_at_all(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.append_many([("t", b"premier", b"k0")])
    outbox.append_many([("t", f"v{i}".encode(), f"k{i}".encode()) for i in range(1, 4)])
    assert [(e.seq, e.value, e.key) for e in outbox.after(0)] == [
        (1, b"premier", b"k0"), (2, b"v1", b"k1"), (3, b"v2", b"k2"), (4, b"v3", b"k3")]
    with pytest.raises(sqlite3.IntegrityError):  # a value is required: the whole batch is refused
        outbox.append_many([("t", b"v5", b"k5"), ("t", None, b"k6")])  # type: ignore[list-item]
    assert outbox.last() == 4
    outbox.append_many([("t", b"apres", None)])  # the connection is usable after the refusal
    assert [e.value for e in outbox.after(4)] == [b"apres"]
