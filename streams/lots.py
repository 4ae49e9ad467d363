"""Batches of events whose table writes still go to each event's own partition.

Faust logs a table write to the partition of ``current_event()``; inside ``take_events`` that
is unset (or the batch's last event), so an agent that batches must name the event it is
working for before it writes. :func:`pour` does that. Batching lets an agent wait for all
of a batch's broker acks at once instead of one round trip per record (issue 8).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import faust
from faust.streams import _current_event

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
    """Messages bound for one partition, sent as one record; ``envoi``: its broker ack, once sent."""

    __slots__ = ("envoi", "messages", "partition")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.messages: list[Any] = []
        self.envoi: Any = None


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

    def ajouter(self, cle: bytes, message: Any) -> Paquet:
        p = partition_de(cle, self.partitions)
        paquet = self.ouverts.get(p)
        if paquet is None or len(paquet.messages) >= PAQUET:
            if paquet is not None:
                self.pleins.append(paquet)
            paquet = self.ouverts[p] = Paquet(p)
        paquet.messages.append(message)
        return paquet

    async def envoyer(self, topic: Any, encoder: Callable[[list[Any]], bytes]) -> None:
        """Send every packet (each one's ``envoi`` is then its pending ack) and start afresh."""
        paquets, self.pleins, self.ouverts = [*self.pleins, *self.ouverts.values()], [], {}
        for paquet in paquets:
            paquet.envoi = await topic.send(key=b"lot-%d" % paquet.partition, value=encoder(paquet.messages),
                                            partition=paquet.partition)


def pour(event: faust.types.EventT) -> None:
    """Table writes from now on belong to ``event`` (its topic and partition)."""
    _current_event.set(weakref.ref(event))


def par_lots(stream: faust.StreamT, taille: int = TAILLE) -> AsyncIterator[list[faust.types.EventT]]:
    """The stream's events in batches; Faust acks a batch once the loop body is done with it,
    so the body must not raise (a raise would ack what was not processed)."""
    return stream.take_events(taille, within=ATTENTE)


def par_lots_de_paquets(stream: faust.StreamT) -> AsyncIterator[list[faust.types.EventT]]:
    """Batches of a topic of packets (:class:`Paquets`): ``TAILLE_PAQUETS`` records, up to 5,000
    messages, not 50,000: a batch holds its records' values (~100 KB a packet), their pending
    writes and acks until it ends."""
    return par_lots(stream, TAILLE_PAQUETS)


async def acquittements(envois: list[Any]) -> list[BaseException | None]:
    """Wait for every broker ack of a batch; the error of each send that failed, else None."""
    resultats = await asyncio.gather(*envois, return_exceptions=True)
    return [r if isinstance(r, BaseException) else None for r in resultats]


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
        return self.ecrits[cle][0] if cle in self.ecrits else self.table.get(cle)

    def __setitem__(self, cle: Any, valeur: Any) -> None:
        ref = _current_event.get(None)
        self.ecrits[cle] = (valeur, ref() if ref is not None else None)

    def oublier(self) -> None:
        """Drop what a batch cut short (cancelled) left: its records are redelivered."""
        self.ecrits.clear()

    def ecrire(self) -> None:
        """Into the table, each under its own event's partition."""
        ecrits, self.ecrits = self.ecrits, {}
        for cle, (valeur, event) in ecrits.items():
            if event is not None:
                pour(event)
            self.table[cle] = valeur
            if self.apres is not None:
                self.apres(cle, valeur)
