"""The hub's own work per signalement, without Kafka: the ceiling of any design on one core.

The calls the hub's agents make for a new signalement, in their order, on the bench's
signalements, in this process: decode and validate, the arrival (dedup, triage and routing:
:func:`aiguillage.routing.accueil.accueillir`), the hop to the team as a typed message, the
placement (:func:`aiguillage.routing.equipe.nouveau`), the Affectation's Avro, the life cycle
and its Retour (:func:`aiguillage.routing.cycle.sur_affectation`) and the figures' contributions. No table, no broker, no Faust: what is left when
the transport costs nothing. A hub whose pure work takes W µs cannot pass 1/W signalements
per second on one core, whatever carries its records (issue 8).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from aiguillage.agregats import calcul
from aiguillage.bench.donnees import Enregistrement
from aiguillage.codec import AvroCodec
from aiguillage.config import Settings
from aiguillage.domain import Signalement
from aiguillage.routing import accueil, cycle, equipe, messages
from aiguillage.routing.rechargement import ConfigCourante

ETAPES = ("decode and validate", "triage and routing", "hop to the team", "placement", "Affectation Avro",
          "life cycle and Retour", "figures")


def _charge(charges: dict[str, int], equipe: str, assistant: str) -> int:
    return charges.get(f"{equipe}|{assistant}", 0)


def mesurer(enregistrements: list[Enregistrement], progress: Callable[[int], None] = lambda _: None) -> dict:
    """µs per signalement, by stage and in all, and the rate that allows on one core."""
    from streams.figures import APPLIQUER

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
        r = accueil.accueillir(accueil.Assure(), s, moteur, maintenant)
        t2 = horloge()
        if isinstance(r, accueil.VersEquipe):
            ((team, m),) = messages.decoder(None, messages.encoder_paquet([(r.equipe, r.message)]))
        t3 = horloge()
        if isinstance(r, accueil.VersEquipe):
            aff = None
            while aff is None:  # an overflow goes on to the neighbour team, as the team agent does
                ctx = equipe.Contexte(team, moteur, maintenant, charge_lue=partial(_charge, charges, team))
                d = equipe.decider(ctx, m, lambda: ())
                for e in d.ecritures:
                    if isinstance(e, equipe.PoserCharge):
                        charges[f"{e.equipe}|{e.assistant}"] = e.n
                aff = next((x.aff for x in d.sorties if isinstance(x, equipe.EmettreAffectation)), None)
                hop = next((x for x in d.sorties if isinstance(x, equipe.Transmettre)), None)
                if aff is None and hop is None:
                    break
                if aff is None and hop is not None:
                    team, m = hop.equipe, hop.message
        else:
            aff = r.aff if r is not None else None
        t4 = horloge()
        sortie = codec.encode("Affectation", aff.to_avro()) if aff is not None else b""
        t5 = horloge()
        if aff is not None:
            data = codec.decode("Affectation", sortie)  # the life cycle decodes once for both stages
            issue = cycle.sur_affectation(None, aff.model_validate(data), moteur.equipes, moteur.version, maintenant)
            for x in issue.sorties:
                if isinstance(x, cycle.PublierRetour):
                    codec.encode("Retour", x.retour)
        t6 = horloge()
        if aff is not None:
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
