"""Where routing state lives, and why: three agents, three keys.

Faust writes a table's changelog to the partition *of the event being processed*,
so a table entry must always be written while iterating a stream keyed like it.
Routing needs state under three different keys, hence three agents::

    signalements.entrants.*  (key: nir_pseudonyme)
        └─ agent ``routage`` (streams/ingress.py): validate, dedup, triage, territory.
           table: assures[nir_pseudonyme] (team of the last case, ids seen: the dedup)
           -> <app>-equipes, to the team's partition  (or an Affectation directly for
              (a packet per partition and batch)         a signalement that has no team)
    <app>-equipes  (key: team id; internal)
        └─ agent ``equipes`` (streams/teams.py): caseloads, waiting files, cases.
           tables: charges["team|caseworker"], dossiers[signalement_id],
                   assures_equipe["team|nir_pseudonyme"], escalades[team]
           -> affectations (initiale, attribution, escalade, reorientation), agregats
    <app>-affectations + suivis + <app>-signalements  (key: signalement_id; co-partitioned)
        └─ agent ``cycle`` (streams/lifecycle.py): FHIR status, retours, deadlines; and, in
           the same pass, the figures' first stage (streams/figures.py).
           table: cycles[signalement_id] (with the figures' dossier, written once per batch)
           -> retours.<source>, signalements.rejetes, <app>-equipes (liberer, reorienter,
              escalade), <app>-signalements (deadline checks from the timer)

One team's caseload is therefore on one partition of ``<app>-equipes``: the choice
of a caseworker never races with another worker. Suivis are keyed by
signalement_id (the caller does not know the team): ``cycle`` consumes them
together with the Affectations (same key, same partition count), so it knows each
signalement's current team and forwards caseload effects to that team's partition.
Every Affectation goes to ``affectations`` for the sinks and, the same bytes packed by
partition, to ``<app>-affectations`` for ``cycle`` (:mod:`streams.affectation_packets`):
a packet per partition and batch, not a Faust event per signalement.

Référent unique: ``routage`` remembers, per assuré, the team of their last case and
sends a new signalement there; ``equipes`` links it to the open case it holds for
that assuré (same caseworker, no second case), or follows a transfer, or places it
in its territory's team.

Sequence numbers: the team that holds a signalement numbers its Affectations
(attribution, escalade, réorientation: sequence + 1); only a signalement with no
team is numbered by ``cycle``. One writer per signalement, so "newer sequence wins"
downstream is well defined.

``routage`` and ``equipes`` take batches (:mod:`streams.batches`): a batch can span
partitions, so each names its event before a table write, which is then logged to that
event's partition. Per-record work is pure functions over a configuration compiled at
start-up (dict look-ups).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import faust

from aiguillage import topics

if TYPE_CHECKING:
    from streams.topology import Topology


def declarer(topo: Topology) -> None:
    app = topo.app
    parts = app.conf.topic_partitions
    prefix = app.conf.id
    topo.equipes = app.topic(f"{prefix}-equipes", internal=True, partitions=parts, key_serializer="raw", value_serializer="raw")
    topo.signalements = app.topic(f"{prefix}-signalements", internal=True, partitions=parts, key_serializer="raw", value_serializer="raw")
    topo.affectations_cycle = app.topic(topics.affectations_du_cycle(prefix), internal=True, partitions=parts,
                                        key_serializer="raw", value_serializer="raw")
    from streams.topology import options_table

    def table(name: str, default: type | None, aide: str) -> faust.types.TableT:
        """JSON keys and values; the store's options (RocksDB's memory bounds) for each."""
        return app.Table(name, default=default, help=aide, options=options_table(),
                         schema=faust.Schema(key_serializer="json", value_serializer="json"))

    # One record per assuré and batch: the team hint and the signalement ids already routed
    # (dedup; a resend has the same id and, keyed by assuré, comes to the same partition).
    topo.assures = table("assures", None, "nir_pseudonyme -> team of the assuré's last case, signalement ids seen")
    topo.charges = table("charges", int, "'team|caseworker' -> active cases")
    topo.dossiers = table("dossiers", None, "signalement_id -> its case in a team: caseworker or waiting")
    topo.assures_equipe = table("assures_equipe", None, "'team|nir_pseudonyme' -> open case in that team, or where it moved")
    topo.escalades = table("escalades", int, "team -> first-contact deadlines missed so far")
    topo.cycles = table("cycles", None, "signalement_id -> FHIR status, latest affectation, deadline")
