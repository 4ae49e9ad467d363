"""Batch helpers of the agents (streams/batches.py): the spreading of a timer's burst."""

from __future__ import annotations

import asyncio

import pytest

from streams import batches


def _pauses(total: int, duree: float, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    vues: list[float] = []

    async def sleep(d: float) -> None:
        vues.append(d)

    monkeypatch.setattr(batches.asyncio, "sleep", sleep)

    async def envoyer() -> None:
        rythme = batches.Etalement(total, duree)
        for _ in range(total):
            await rythme.apres_envoi()

    asyncio.run(envoyer())
    return vues


def test_a_burst_is_sent_in_packets_spread_over_the_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses = _pauses(4 * batches.PAQUET, 2.0, monkeypatch)
    assert pauses == [0.5] * 4  # one pause after each packet: 4 x 0.5 s = the 2 s asked for


def test_a_partial_last_packet_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses = _pauses(2 * batches.PAQUET + 1, 3.0, monkeypatch)
    assert pauses == [1.0, 1.0]  # three packets, the last one (1 record) sent without a pause after


def test_one_packet_or_no_duration_never_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _pauses(batches.PAQUET, 5.0, monkeypatch) == [0.0]
    assert _pauses(3 * batches.PAQUET, 0.0, monkeypatch) == [0.0, 0.0, 0.0]


def test_a_burst_stops_when_asked_after_a_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    async def sleep(_: float) -> None:
        return None

    monkeypatch.setattr(batches.asyncio, "sleep", sleep)
    envoyes = 0

    async def envoyer() -> None:
        nonlocal envoyes
        rythme = batches.Etalement(5 * batches.PAQUET, 1.0)
        for _ in range(5 * batches.PAQUET):
            envoyes += 1
            # The running count, read when asked (after a pause): what this test checks.
            if not await rythme.apres_envoi(lambda: envoyes < 2 * batches.PAQUET):  # noqa: B023
                return

    asyncio.run(envoyer())
    assert envoyes == 2 * batches.PAQUET  # asked only after a pause: whole packets are sent


def test_a_send_can_count_for_several_records(monkeypatch: pytest.MonkeyPatch) -> None:
    vues: list[float] = []

    async def sleep(d: float) -> None:
        vues.append(d)

    monkeypatch.setattr(batches.asyncio, "sleep", sleep)

    async def envoyer() -> None:
        rythme = batches.Etalement(3 * batches.PAQUET, 3.0)
        # Packets of values: 60 + 60 crosses one PAQUET, 120 more cross the second, 60 the third.
        for poids in (60, 60, 120, 60):
            await rythme.apres_envoi(poids=poids)

    asyncio.run(envoyer())
    assert vues == [1.0, 1.0, 1.0]


def test_a_batch_s_messages_go_in_packets_to_their_key_s_partition_in_order() -> None:
    from aiguillage.kafka import partition_de

    envoyes: list[tuple[bytes, list[str], int]] = []

    class Topic:
        async def send(self, key: bytes, value: bytes, partition: int, headers: object = None) -> str:
            envoyes.append((key, value.decode().split(","), partition))
            return f"ack-{len(envoyes)}"

    paquets, envois = batches.Paquets(4), batches.Envois()
    cles = [f"eq-{i % 7}".encode() for i in range(3 * batches.PAQUET)]
    for i, c in enumerate(cles):
        paquets.ajouter(c, f"m{i}", origine=i)
    asyncio.run(paquets.envoyer(envois, Topic(), lambda ms: ",".join(ms).encode()))

    assert sorted(m for _, ms, _ in envoyes for m in ms) == sorted(f"m{i}" for i in range(len(cles)))
    for _, ms, p in envoyes:
        assert len(ms) <= batches.PAQUET
        assert all(partition_de(cles[int(m[1:])], 4) == p for m in ms)
        assert [int(m[1:]) for m in ms] == sorted(int(m[1:]) for m in ms)  # a partition's messages keep their order
    # Each packet is a send awaiting its ack, naming its messages' origins; the next batch starts anew.
    assert len(envois) == len(envoyes)
    assert sorted(o for e in envois._en_vol for o in e.origine) == list(range(len(cles)))
    assert not paquets.ouverts and not paquets.pleins
