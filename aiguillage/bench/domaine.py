"""The hub's own work per signalement, without Kafka: the ceiling of any design on one core.

The calls the hub's agents make for a new signalement, in their order, on the bench's
signalements, in this process: decode and validate (``streams/routage.py``), triage and
routing, the hop to the team as JSON, the placement (``streams/equipes.py``), the
Affectation's Avro, the life cycle's Retour (``streams/cycle.py``) and the figures'
contributions (``streams/agregats.py``). No table, no broker, no Faust: what is left when
the transport costs nothing. A hub whose pure work takes W µs cannot pass 1/W signalements
per second on one core, whatever carries its records (issue 8).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiguillage.agregats import calcul
from aiguillage.bench.donnees import Enregistrement
from aiguillage.codec import AvroCodec
from aiguillage.config import Settings
from aiguillage.domain import Affectation, Signalement
from aiguillage.routing import cycle
from aiguillage.routing.affectation import avec_placement, orienter, placer
from aiguillage.routing.cycle import Statut
from aiguillage.routing.rechargement import ConfigCourante

ETAPES = ("decode and validate", "triage and routing", "hop to the team", "placement", "Affectation Avro",
          "life cycle and Retour", "figures")


def mesurer(enregistrements: list[Enregistrement], progress: Callable[[int], None] = lambda _: None) -> dict:
    """µs per signalement, by stage and in all, and the rate that allows on one core."""
    from streams.agregats import APPLIQUER
    from streams.cycle import ce_qui_reste
    from streams.routage import lot_de_demandes

    codec = AvroCodec()
    moteur = ConfigCourante(Settings().routing_file).moteur  # the file the hub contender reads
    charges: dict[str, int] = {}  # caseloads grow as in a backlog: no case closes
    temps = dict.fromkeys(ETAPES, 0.0)
    maintenant = datetime.now(UTC)
    horloge = time.perf_counter
    for i, (_, value, _) in enumerate(enregistrements):
        t0 = horloge()
        s = Signalement.model_validate(codec.decode("Signalement", value))
        t1 = horloge()
        o = orienter(moteur, s, maintenant)
        aff = o.affectation
        t2 = horloge()
        message = {"kind": "nouveau", "aff": aff.model_dump(mode="json"), "placer": o.a_placer, "territoire": aff.equipe}
        recu = json.loads(lot_de_demandes([(aff.equipe, message)]))["lot"][0][1]
        aff = Affectation.model_validate(recu["aff"])
        t3 = horloge()
        if aff.equipe is not None:
            aff = avec_placement(aff, placer(moteur, aff.equipe, aff.axe, lambda a: charges.get(a, 0)))
            if aff.assistant:
                charges[aff.assistant] = charges.get(aff.assistant, 0) + 1
        t4 = horloge()
        sortie = codec.encode("Affectation", aff.to_avro())
        t5 = horloge()
        data = codec.decode("Affectation", sortie)  # the life cycle decodes once for both stages
        lue = Affectation.model_validate(data)
        codec.encode("Retour", cycle.retour(ce_qui_reste(lue), Statut.REQUESTED, None, "aff1", lue.decide_le))
        t6 = horloge()
        calcul.difference(None, APPLIQUER["Affectation"](None, data))
        t7 = horloge()
        for etape, (a, b) in zip(ETAPES, itertools.pairwise((t0, t1, t2, t3, t4, t5, t6, t7)), strict=True):
            temps[etape] += b - a
        if i % 1000 == 999:
            progress(i + 1)
    n = max(1, len(enregistrements))
    par_etape = {e: round(1e6 * t / n, 1) for e, t in temps.items()}
    total = sum(temps.values()) / n
    return {"count": len(enregistrements), "stages_us": par_etape, "us_per_msg": round(1e6 * total, 1),
            "max_per_s_one_core": round(1 / total) if total else None}
