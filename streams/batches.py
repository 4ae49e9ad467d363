"""Batches of events whose table writes still go to each event's own partition.

Faust logs a table write to the partition of ``current_event()``; inside ``take_events`` that
is unset (or the batch's last event), so an agent that batches must name the event it is
working for before it writes. :func:`pour` does that. Batching lets an agent wait for all
of a batch's broker acks at once instead of one round trip per record (issue 8).
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust
from faust.streams import _current_event
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential

from aiguillage import logs
from aiguillage.kafka import partition_de

TAILLE = 500  # records per batch at most
ATTENTE = 0.02  # seconds a partial batch waits for more (the latency it may add at low rates)
PAQUET = 100  # records a timer sends at a time, when it spreads a burst; messages per packet
TAILLE_PAQUETS = 50  # records per batch at most, on a topic of packets


class Etalement:
    """Spread a timer's burst of sends over ``duree`` seconds, ``PAQUET`` records at a time.

    A send to a started producer does not wait for the broker, so a timer publishing a few
    thousand records at once put them all before the agents' records in the broker's queue,
    and the agents await their acks. Measured with `aiguillage bench --only hub --rate 100`
    (issue 8): the figures' tick (~8,000 records every 5 s) made the hub's p99 ~900 ms, and
    ~180 ms with the figures off.
    """

    def __init__(self, total: int, duree: float) -> None:
        paquets = max(1, -(-total // PAQUET))
        self.pause = duree / paquets if paquets > 1 else 0.0
        self.n = 0

    async def apres_envoi(self, continuer: Callable[[], bool] = lambda: True, poids: int = 1) -> bool:
        """Pause after each packet (``poids``: what this send counts, a packet of values counts
        them all); False if ``continuer`` says to stop (read after a pause)."""
        avant, self.n = self.n // PAQUET, self.n + poids
        if self.n // PAQUET > avant:
            await asyncio.sleep(self.pause)
            return continuer()
        return True


class Paquet:
    """Messages bound for one partition, sent as one record, with where each came from."""

    __slots__ = ("messages", "origines", "partition")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.messages: list[Any] = []
        self.origines: list[Any] = []


class Paquets:
    """A batch's messages to an internal topic, bundled: one record per destination partition and
    ``PAQUET`` messages, not one per message. Each message goes to the partition its own key
    would have chosen (:func:`aiguillage.kafka.partition_de`), so the consumer writes its table
    entries where a record keyed by it would have. Measured with `aiguillage bench` (issue 8):
    the hop to the teams' partitions cost a Faust event and a produce per signalement."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.ouverts: dict[int, Paquet] = {}
        self.pleins: list[Paquet] = []

    def ajouter(self, cle: bytes, message: Any, origine: Any = None) -> None:
        p = partition_de(cle, self.partitions)
        paquet = self.ouverts.get(p)
        if paquet is None or len(paquet.messages) >= PAQUET:
            if paquet is not None:
                self.pleins.append(paquet)
            paquet = self.ouverts[p] = Paquet(p)
        paquet.messages.append(message)
        paquet.origines.append(origine)

    async def envoyer(self, envois: Envois, topic: Any, encoder: Callable[[list[Any]], bytes]) -> None:
        """Send every packet with ``envois`` (a packet that fails names all its messages' origins)."""
        paquets, self.pleins, self.ouverts = [*self.pleins, *self.ouverts.values()], [], {}
        for paquet in paquets:
            await envois.envoyer(topic, encoder(paquet.messages), key=b"lot-%d" % paquet.partition,
                                 partition=paquet.partition, origine=paquet.origines)


def pour(event: faust.types.EventT) -> None:
    """Table writes from now on belong to ``event`` (its topic and partition)."""
    _current_event.set(weakref.ref(event))
    m = event.message
    logs.sur_record(topic=m.topic, partition=m.partition, offset=m.offset)  # what this task logs names it


def par_lots(stream: faust.StreamT, taille: int = TAILLE) -> AsyncIterator[list[faust.types.EventT]]:
    """The stream's events in batches; Faust acks a batch once the loop body is done with it,
    so the body must not raise (a raise would ack what was not processed)."""
    return stream.take_events(taille, within=ATTENTE)  # type: ignore[attr-defined]


def par_lots_de_paquets(stream: faust.StreamT) -> AsyncIterator[list[faust.types.EventT]]:
    """Batches of a topic of packets (:class:`Paquets`): ``TAILLE_PAQUETS`` records, up to 5,000
    messages, not 50,000: a batch holds its records' values (~100 KB a packet), their pending
    writes and acks until it ends."""
    return par_lots(stream, TAILLE_PAQUETS)


class EnvoiImpossible(RuntimeError):
    """A batch's output could be neither sent nor dead-lettered: the batch must not be acknowledged."""


@dataclass
class _EnVol:
    topic: Any
    key: bytes | None
    value: bytes
    partition: int | None
    origine: Any  # what produced it (an event, a message): dead-lettered if it cannot be sent
    ack: Any
    headers: Any = None  # the trace context, when tracing is on (aiguillage/tracing.py)


class Envois:
    """A batch's sends with what was sent and why: their acks are awaited together before the
    batch is acknowledged; a send that failed is sent again (tenacity, ``renvoi_s`` seconds at
    most), and the origins of those that still fail are handed back to be dead-lettered."""

    def __init__(self, renvoi_s: float = 30.0) -> None:
        self._en_vol: list[_EnVol] = []
        self.renvoi_s = renvoi_s  # how long a failed send is tried again (AIGUILLAGE_RESEND_TIMEOUT)

    def __len__(self) -> int:
        return len(self._en_vol)

    async def envoyer(self, topic: Any, value: bytes, key: bytes | None = None, partition: int | None = None,
                      origine: Any = None, headers: Any = None) -> None:
        ack = await topic.send(key=key, value=value, partition=partition, headers=headers)
        self._en_vol.append(_EnVol(topic, key, value, partition, origine, ack, headers))

    async def confirmer(self) -> list[tuple[Any, BaseException]]:
        """Every ack of the batch; the (origin, error) of each send that failed for good."""
        en_vol, self._en_vol = self._en_vol, []
        echecs: list[tuple[Any, BaseException]] = []
        for envoi, erreur in zip(en_vol, await acquittements([e.ack for e in en_vol]), strict=True):
            if erreur is not None:
                try:
                    await _renvoyer(envoi, self.renvoi_s)
                except Exception as exc:  # noqa: BLE001 - what is left is the caller's to dead-letter
                    echecs.append((envoi.origine, exc))
        return echecs


def origines(echecs: list[tuple[Any, BaseException]]) -> list[tuple[Any, BaseException]]:
    """Each origin of failed sends with its error (a packet's send names all its messages')."""
    return [(o, e) for origine, e in echecs for o in (origine if isinstance(origine, list) else [origine])
            if o is not None]


EXIT_BATCH_UNACKNOWLEDGED = 75  # EX_TEMPFAIL: start the worker again, it will do better


async def sans_perte(traitement: Awaitable[None]) -> None:
    """Run a batch's processing. If it fails as a whole (its outputs could be neither sent nor
    dead-lettered, or a fault outside any one record's handling), end the process at once, as a
    SIGKILL would: Faust acknowledges a batch when its agent raises, returns or is cancelled
    (``take_events`` acks in a ``finally``), and a clean stop commits what is acknowledged, so
    anything but an immediate exit would commit the offsets of records whose effects were never
    written (DESIGN.md, Faust pitfalls). The next worker (``up`` and the orchestrator start one)
    gets the batch again; the effects are idempotent."""
    try:
        await traitement
    except Exception as exc:
        log = logging.getLogger(__name__)
        log.critical("ending the worker now, its batch unacknowledged (it will be redelivered): %r", exc, exc_info=True)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_BATCH_UNACKNOWLEDGED)


async def _renvoyer(envoi: _EnVol, renvoi_s: float) -> None:
    async for tentative in AsyncRetrying(stop=stop_after_delay(renvoi_s), wait=wait_exponential(0.2, max=5),
                                         reraise=True):
        with tentative:
            await (await envoi.topic.send(key=envoi.key, value=envoi.value, partition=envoi.partition,
                                          headers=envoi.headers))


async def acquittements(envois: list[Any]) -> list[BaseException | None]:
    """Wait for every broker ack of a batch; the error of each send that failed, else None."""
    resultats = await asyncio.gather(*envois, return_exceptions=True)
    return [r if isinstance(r, BaseException) else None for r in resultats]


_OTE = object()  # what a Tampon holds for an entry to remove


class Tampon:
    """One table's writes of a batch, held here and written once per key when the batch ends.

    Reads see the batch's own writes first. Each key is logged to the partition of the event
    that wrote it last (the one being handled, as :func:`pour` named it). Two stages that keep
    their state under the same key in one table then cost one changelog record per key and
    batch, not one per write (issue 8: the life cycle and the figures' first stage).
    """

    def __init__(self, table: Any, apres: Callable[[Any, Any], None] | None = None) -> None:
        self.table = table
        self.apres = apres  # told of each key and value written (an index that follows the table)
        self.ecrits: dict[Any, tuple[Any, Any]] = {}

    def get(self, cle: Any) -> Any:
        if cle in self.ecrits:
            valeur = self.ecrits[cle][0]
            return None if valeur is _OTE else valeur
        return self.table.get(cle)

    def __setitem__(self, cle: Any, valeur: Any) -> None:
        ref = _current_event.get(None)
        self.ecrits[cle] = (valeur, ref() if ref is not None else None)

    def oter(self, cle: Any) -> None:
        """The entry goes when the batch ends (a tombstone in the changelog)."""
        self[cle] = _OTE

    def oublier(self) -> None:
        """Drop what a batch cut short (cancelled) left: its records are redelivered."""
        self.ecrits.clear()

    def ecrire(self) -> None:
        """Into the table, each under its own event's partition."""
        ecrits, self.ecrits = self.ecrits, {}
        for cle, (valeur, event) in ecrits.items():
            if event is not None:
                pour(event)
            if valeur is _OTE:
                self.table.pop(cle, None)
                valeur = None
            else:
                self.table[cle] = valeur
            if self.apres is not None:
                self.apres(cle, valeur)
