"""An Affectation out: on the public ``affectations`` topic, and packed for the life cycle.

The life cycle and the figures' first stage used to consume ``affectations`` itself: a Faust
event per signalement, the second after its Signalement's (issue 22). They now read the very
bytes the sinks read, from ``<app>-affectations``, in packets: one record per partition and
:data:`streams.batches.PAQUET` Affectations, each at the partition its key would have chosen,
the partition of its suivis. Every writer of an Affectation (routing, the teams, the life cycle)
sends both with its batch (:class:`SortieAffectations`), which is acknowledged only when both are.

A packet is ``MAGIC`` then, per Affectation, its key and its Confluent-framed Avro value, each
after its length (4 bytes, big-endian). A record that does not start with ``MAGIC`` is one
Affectation keyed by its signalement_id: a dead letter of the life cycle's, replayed.
"""

from __future__ import annotations

import struct
from typing import Any

from aiguillage.codec import AvroCodec
from aiguillage.domain import Affectation
from streams.batches import Envois, Paquets, origines

MAGIC = b"AFF\x01"  # a Confluent frame starts with the byte 0: no single record reads as a packet
_LONGUEUR = struct.Struct(">I")


def encoder(affectations: list[tuple[bytes, bytes]]) -> bytes:
    parts = [MAGIC]
    for cle, valeur in affectations:
        parts += [_LONGUEUR.pack(len(cle)), cle, _LONGUEUR.pack(len(valeur)), valeur]
    return b"".join(parts)


def decoder(cle: bytes | None, valeur: bytes) -> list[tuple[bytes | None, bytes]]:
    """The (key, value) of each Affectation of a record of ``<app>-affectations``. Raises
    ValueError on a packet cut short."""
    if not valeur.startswith(MAGIC):
        return [(cle, valeur)]
    out: list[tuple[bytes | None, bytes]] = []
    i, fin = len(MAGIC), len(valeur)
    while i < fin:
        champs = []
        for quoi in ("key", "value"):
            if i + 4 > fin:
                raise ValueError(f"a packet of Affectations cut short in a {quoi}'s length, at byte {i}")
            (n,) = _LONGUEUR.unpack_from(valeur, i)
            i += 4
            if i + n > fin:
                raise ValueError(f"a packet of Affectations cut short in a {quoi} of {n} bytes, at byte {i}")
            champs.append(valeur[i:i + n])
            i += n
        out.append((champs[0], champs[1]))
    return out


class SortieAffectations:
    """A batch's Affectations: each sent at once to ``affectations``; then, once the batch's sends are
    acknowledged, those of them the broker took, packed for the life cycle. It never sees an
    Affectation that the topic does not hold (one whose send failed for good is dead-lettered with
    its origin, and comes back, with its packet, when that is replayed)."""

    def __init__(self, topo: Any, codec: AvroCodec, envois: Envois) -> None:
        self.topo, self.codec, self.envois = topo, codec, envois  # envois: the agent's, its batch's sends
        self.paquets = Paquets(topo.app.conf.topic_partitions)
        self.envoyees: list[tuple[bytes, bytes, Any]] = []

    async def envoyer(self, aff: Affectation, origine: Any, headers: Any = None) -> None:
        cle, valeur = aff.cle(), self.codec.encode("Affectation", aff.to_avro())
        await self.envois.envoyer(self.topo.affectations, valeur, key=cle, origine=origine, headers=headers)
        self.envoyees.append((cle, valeur, origine))

    async def confirmer(self, fin: bool = True) -> list[tuple[Any, BaseException]]:
        """The acks of every send so far: the (origin, error) of each that failed for good, for the
        caller to dead-letter (:meth:`streams.dead_letters.DeadLetters.apres_echecs`). Then the
        packets of the Affectations acknowledged, sent; at the batch's end (``fin``) their acks too.
        Within a batch they are awaited by the next call, with that part's sends: one round trip
        more per batch, not per part."""
        echecs = await self.envois.confirmer()
        envoyees, self.envoyees = self.envoyees, []
        if not envoyees:
            return echecs
        perdues = {id(o) for o, _ in origines(echecs)}
        for cle, valeur, origine in envoyees:
            if id(origine) not in perdues:
                self.paquets.ajouter(cle, (cle, valeur), origine)
        await self.paquets.envoyer(self.envois, self.topo.affectations_cycle, encoder)
        return echecs + await self.envois.confirmer() if fin else echecs
