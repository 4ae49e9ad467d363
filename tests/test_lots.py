"""Batch helpers of the agents (streams/lots.py): the spreading of a timer's burst."""

from __future__ import annotations

import asyncio

import pytest

from streams import lots


def _pauses(total: int, duree: float, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    vues: list[float] = []

    async def sleep(d: float) -> None:
        vues.append(d)

    monkeypatch.setattr(lots.asyncio, "sleep", sleep)

    async def envoyer() -> None:
        rythme = lots.Etalement(total, duree)
        for _ in range(total):
            await rythme.apres_envoi()

    asyncio.run(envoyer())
    return vues


def test_a_burst_is_sent_in_packets_spread_over_the_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses = _pauses(4 * lots.PAQUET, 2.0, monkeypatch)
    assert pauses == [0.5] * 4  # one pause after each packet: 4 x 0.5 s = the 2 s asked for


def test_a_partial_last_packet_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses = _pauses(2 * lots.PAQUET + 1, 3.0, monkeypatch)
    assert pauses == [1.0, 1.0]  # three packets, the last one (1 record) sent without a pause after


def test_one_packet_or_no_duration_never_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _pauses(lots.PAQUET, 5.0, monkeypatch) == [0.0]
    assert _pauses(3 * lots.PAQUET, 0.0, monkeypatch) == [0.0, 0.0, 0.0]


def test_a_burst_stops_when_asked_after_a_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    async def sleep(_: float) -> None:
        return None

    monkeypatch.setattr(lots.asyncio, "sleep", sleep)
    envoyes = 0

    async def envoyer() -> None:
        nonlocal envoyes
        rythme = lots.Etalement(5 * lots.PAQUET, 1.0)
        for _ in range(5 * lots.PAQUET):
            envoyes += 1
            if not await rythme.apres_envoi(lambda: envoyes < 2 * lots.PAQUET):
                return

    asyncio.run(envoyer())
    assert envoyes == 2 * lots.PAQUET  # asked only after a pause: whole packets are sent


def test_a_send_can_count_for_several_records(monkeypatch: pytest.MonkeyPatch) -> None:
    vues: list[float] = []

    async def sleep(d: float) -> None:
        vues.append(d)

    monkeypatch.setattr(lots.asyncio, "sleep", sleep)

    async def envoyer() -> None:
        rythme = lots.Etalement(3 * lots.PAQUET, 3.0)
        # Packets of values: 60 + 60 crosses one PAQUET, 120 more cross the second, 60 the third.
        for poids in (60, 60, 120, 60):
            await rythme.apres_envoi(poids=poids)

    asyncio.run(envoyer())
    assert vues == [1.0, 1.0, 1.0]
