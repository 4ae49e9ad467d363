"""AIGUILLAGE_EVENT_LOOP: the loops a worker makes are uvloop's by default, asyncio's on request."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from aiguillage.config import Settings
from streams import event_loop


@pytest.fixture(autouse=True)
def politique_rendue():
    yield
    asyncio.set_event_loop_policy(None)  # the tests' own loops stay the standard ones


def _boucle_faite() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.close()
    return loop


def test_the_default_is_uvloop():
    event_loop.choisir(Settings().event_loop)
    assert isinstance(_boucle_faite(), uvloop.Loop)


def test_asyncio_on_request(monkeypatch):
    monkeypatch.setenv("AIGUILLAGE_EVENT_LOOP", "asyncio")
    event_loop.choisir(Settings().event_loop)
    assert not isinstance(_boucle_faite(), uvloop.Loop)


def test_an_unknown_loop_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("AIGUILLAGE_EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match="event_loop"):
        Settings()
