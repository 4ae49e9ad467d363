"""The hub's own work per signalement, without Kafka: the ceiling of any design on one core.

The calls the hub's agents make for new signalements, in their order and in batches as they
take them, on the bench's signalements, in this process: decode and validate, the arrival
(dedup, triage and routing: :func:`aiguillage.routing.accueil.accueillir`), the hop to the team
as typed messages in one packet, the placement (:func:`aiguillage.routing.equipe.nouveau`), the
Affectation's Avro (and its packet for the life cycle), the life cycle and its Retour (:func:`aiguillage.routing.cycle.sur_affectation`)
and the figures' contributions (as groups of keys, named once per publication). No table, no broker, no Faust: what is left when the transport
costs nothing. A hub whose pure work takes W µs cannot pass 1/W signalements per second on one
core, whatever carries its records (issue 8).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from aiguillage import topics
from aiguillage.agregats import calcul
from aiguillage.bench.donnees import Enregistrement
from aiguillage.codec import AvroCodec
from aiguillage.config import Settings
from aiguillage.domain import Affectation, Signalement, Source
from aiguillage.routing import accueil, cycle, equipe, messages
from aiguillage.routing.config_file import Moteur
from aiguillage.routing.rechargement import ConfigCourante
from connectors.base import verifier_provenance
from streams import affectation_packets
from streams.batches import PAQUET

ETAPES = ("decode and validate", "triage and routing", "hop to the team", "placement", "Affectation Avro",
          "life cycle and Retour", "figures")


def _charge(charges: dict[str, int], equipe: str, assistant: str) -> int:
    return charges.get(f"{equipe}|{assistant}", 0)


def _placer(team: str, m: messages.MessageEquipe, moteur: Moteur, charges: dict[str, int],
            maintenant: datetime) -> Affectation | None:
    """The team's decision, and the neighbour's on an overflow, as the team agent makes them."""
    while True:
        ctx = equipe.Contexte(team, moteur, maintenant, charge_lue=partial(_charge, charges, team))
        d = equipe.decider(ctx, m, lambda: ())
        for e in d.ecritures:
            if isinstance(e, equipe.PoserCharge):
                charges[f"{e.equipe}|{e.assistant}"] = e.n
        aff = next((x.aff for x in d.sorties if isinstance(x, equipe.EmettreAffectation)), None)
        hop = next((x for x in d.sorties if isinstance(x, equipe.Transmettre)), None)
        if aff is not None or hop is None:
            return aff
        team, m = hop.equipe, hop.message


# Signalements between two publications of the figures: a second's worth, at about the hub's rate.
PUBLICATION = 1000


def mesurer(enregistrements: list[Enregistrement], progress: Callable[[int], None] = lambda _: None,
            paquet: int = PAQUET) -> dict:
    """µs per signalement, by stage and in all, and the rate that allows on one core.

    ``paquet`` signalements at a time, each stage over all of them, as the hub's agents take
    batches: routing sends a batch's messages to a team partition as one packet of ``PAQUET``."""
    from streams.figures import APPLIQUER

    codec = AvroCodec()
    moteur = ConfigCourante(Settings().routing_file).moteur  # the file the hub contender reads
    charges: dict[str, int] = {}  # caseloads grow as in a backlog: no case closes
    temps = dict.fromkeys(ETAPES, 0.0)
    groupes: dict[calcul.Groupe, int] = {}  # the figures' changes waiting for a publication
    decisions = refus = 0  # Affectations made (one per signalement, or the measure skipped work), refusals
    maintenant = datetime.now(UTC)
    topic = topics.entrants(Source.SERVICE_MEDICAL)  # the bench's signalements come from the service médical
    horloge = time.perf_counter
    for debut in range(0, len(enregistrements), paquet):
        lot = enregistrements[debut:debut + paquet]
        t0 = horloge()
        sigs = [Signalement.model_validate(codec.decode("Signalement", value)) for _, value, _ in lot]
        provenance = [verifier_provenance(s, topic) for s in sigs]  # none refused: the bench's are genuine
        refus += sum(p is not None for p in provenance)
        t1 = horloge()
        routes = [accueil.accueillir(accueil.Assure(), s, moteur, maintenant) for s in sigs]
        t2 = horloge()
        vers: list[tuple[str, messages.MessageEquipe]] = [(r.equipe, r.message) for r in routes
                                                          if isinstance(r, accueil.VersEquipe)]
        recus = messages.decoder(None, messages.encoder_paquet(vers)) if vers else []
        t3 = horloge()
        affs = [_placer(team, m, moteur, charges, maintenant) for team, m in recus]
        affs += [r.aff for r in routes if isinstance(r, accueil.SansEquipe)]
        t4 = horloge()
        sorties = [(aff.cle(), codec.encode("Affectation", aff.to_avro())) for aff in affs if aff is not None]
        paquet_cycle = affectation_packets.encoder(sorties)  # the same bytes, packed for the life cycle
        t5 = horloge()
        decisions += len(sorties)
        # The life cycle decodes once for both stages.
        datas = [codec.decode("Affectation", v) for _, v in affectation_packets.decoder(None, paquet_cycle)]
        for data in datas:
            issue = cycle.sur_affectation(None, Affectation.model_validate(data), moteur.equipes, moteur.version,
                                          maintenant)
            for x in issue.sorties:
                if isinstance(x, cycle.PublierRetour):
                    codec.encode("Retour", x.retour)
        t6 = horloge()
        for data in datas:
            calcul.cumuler(groupes, calcul.difference_groupes(None, APPLIQUER["Affectation"](None, data)))
        fin = debut + len(lot)
        if fin // PUBLICATION > debut // PUBLICATION or fin == len(enregistrements):
            calcul.etendre(groupes)  # the publication names their keys
            groupes = {}
        t7 = horloge()
        for etape, (a, b) in zip(ETAPES, itertools.pairwise((t0, t1, t2, t3, t4, t5, t6, t7)), strict=True):
            temps[etape] += b - a
        if (debut + len(lot)) // 1000 > debut // 1000:
            progress(debut + len(lot))
    n = max(1, len(enregistrements))
    par_etape = {e: round(1e6 * t / n, 1) for e, t in temps.items()}
    total = sum(temps.values()) / n
    return {"count": len(enregistrements), "affectations": decisions, "refused": refus, "stages_us": par_etape, "us_per_msg": round(1e6 * total, 1),
            "max_per_s_one_core": round(1 / total) if total else None}
