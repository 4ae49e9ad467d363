"""The figures' rebuild after a restart, a slice at a time while the life cycle goes on changing
dossiers: the totals it ends with equal a recount of the dossiers, whatever the interleaving.

The stage's own logic (streams/figures.py) on plain dicts for its tables: no broker is involved
in this part of it. The end-to-end restart under traffic is tests/test_agregats_flux.py's.
"""

from __future__ import annotations

import asyncio
import weakref
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from faust.streams import _current_event, current_event
from hypothesis import given, settings
from hypothesis import strategies as st

from aiguillage import topics
from aiguillage.agregats import calcul
from aiguillage.demo.parametres import Parametres
from aiguillage.demo.simulateur import affectation_simulee, simuler
from streams.figures import Agregation
from tests.agregats_util import cle_suivi

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
PARTITIONS = 3


class Msg:
    def __init__(self, topic: str, cle: str) -> None:
        self.topic, self.key, self.partition = topic, cle.encode(), zlib.crc32(cle.encode()) % PARTITIONS


def _messages(seed: int) -> list[Msg | tuple[Msg, dict[str, Any]]]:
    out: list[Any] = []
    for ev in simuler(Parametres(assures_par_an=600), T0, T0 + timedelta(days=40), seed=seed):
        if ev.nature == "signalement":
            out.append((Msg(topics.AFFECTATIONS, ev.record["signalement_id"]), affectation_simulee(ev.record)))
        else:
            out.append((Msg(topics.SUIVIS, cle_suivi(ev.record)), ev.record))
    return out


def _etape(cycles: dict[str, Any]) -> Agregation:
    """The stage with dicts for tables (what Agregation reads of them: get, items, keys, set)."""
    ag = Agregation.__new__(Agregation)
    ag.schemas = {topics.AFFECTATIONS: "Affectation", topics.SUIVIS: "Suivi"}
    ag.cycles, ag.archives, ag.archivage = cycles, {}, {}
    ag.partiels, ag.partiels_sales, ag.partiels_pour, ag.reconstruction = {}, set(), None, None
    ag.groupes = {}
    ag.a_reconstruire = False
    return ag


def _recompte(cycles: dict[str, Any]) -> Counter:
    total: Counter = Counter()
    for entree in cycles.values():
        for k, n in calcul.contributions(entree["ag"]).items():
            total[(entree["ag"]["p"], *k)] += n
    return total


def _totaux(ag: Agregation) -> Counter:
    ag._replier()  # what a publication does first: the changes still waiting as groups
    out: Counter = Counter()
    for (p, c), v in ag.partiels.items():
        for bucket, n in (v.items() if isinstance(v, dict) else [(None, v)]):
            out[(p, c, bucket)] += n
    return Counter({k: n for k, n in out.items() if n})


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), coupure=st.floats(0.2, 0.8), pas=st.integers(1, 40),
       rythme=st.integers(1, 30), purges=st.integers(0, 20), melange=st.randoms(use_true_random=False))
def test_a_rebuild_interleaved_with_the_life_cycle_ends_equal_to_a_recount(seed, coupure, pas, rythme, purges,
                                                                             melange):
    msgs = _messages(seed)
    avant, apres = msgs[:int(len(msgs) * coupure)], msgs[int(len(msgs) * coupure):]
    cycles: dict[str, Any] = {}
    premier = _etape(cycles)
    for msg, record in avant:  # the worker before its restart: its dossiers are what it leaves
        premier.appliquer(msg, record, cycles)

    ag = _etape(cycles)  # the restarted worker: its totals are gone, its dossiers recovered

    purgees: list[dict[str, Any]] = []

    async def scenario() -> None:
        tache = ag.reconstruire_partiels(frozenset(range(PARTITIONS)), pas=pas).tache  # small slices: fine interleaving
        a_purger = melange.sample(sorted(cycles), min(purges, len(cycles)))
        i = 0
        while i < len(apres) or not tache.done():
            for msg, record in apres[i:i + rythme]:  # a batch of the life cycle between two slices
                ag.appliquer(msg, record, cycles)
            i += rythme
            if melange.random() < 0.2:  # a publication's fold, at any point
                ag._replier()
            if a_purger and melange.random() < 0.3:  # a closed dossier archived and removed
                sid = a_purger.pop()
                if sid in cycles:
                    ag.archiver(Msg(topics.AFFECTATIONS, sid), sid, cycles[sid], cycles)
                    purgees.append(cycles.pop(sid))
            await asyncio.sleep(0)
        await tache

    asyncio.run(scenario())
    assert ag.reconstruction is None
    attendu = _recompte(cycles)
    for d in purgees:  # purged dossiers stay counted, through the archive
        for k, n in calcul.contributions(d["ag"]).items():
            attendu[(d["ag"]["p"], *k)] += n
    assert _totaux(ag) == Counter({k: n for k, n in attendu.items() if n})


def test_a_slice_never_counts_a_dossier_the_life_cycle_counted_first():
    msgs = _messages(3)
    cycles: dict[str, Any] = {}
    premier = _etape(cycles)
    for msg, record in msgs[: len(msgs) // 2]:
        premier.appliquer(msg, record, cycles)
    ag = _etape(cycles)

    async def scenario() -> None:
        r = ag.reconstruire_partiels(frozenset(range(PARTITIONS)), pas=5)
        # Before the pass starts, the life cycle changes the dossier the pass would count last.
        dernier = r.cles[-1]
        suivi = {"suivi_id": "s-reconstruction", "signalement_id": dernier, "type": "entretien",
                 "survenu_le": T0 + timedelta(days=2), "mode_entretien": "telephone"}
        ag.appliquer(Msg(topics.SUIVIS, dernier), suivi, cycles)
        assert dernier in r.comptes
        await r.tache

    asyncio.run(scenario())
    assert _totaux(ag) == Counter({k: n for k, n in _recompte(cycles).items() if n})


def test_the_rebuild_reads_the_dossiers_outside_any_batchs_event():
    """Faust's RocksDB store reads a key from the current event's partition only, when there is
    one: the rebuild, started inside a batch, must not inherit its event, or it misses the
    dossiers of every other partition."""
    msgs = _messages(5)
    cycles: dict[str, Any] = {}
    premier = _etape(cycles)
    for msg, record in msgs[: len(msgs) // 2]:
        premier.appliquer(msg, record, cycles)
    vus: list[object] = []

    class Table(dict):
        def get(self, cle: Any, defaut: Any = None) -> Any:
            vus.append(current_event())
            return super().get(cle, defaut)

    ag = _etape(Table(cycles))
    evenement = Msg(topics.AFFECTATIONS, "un-evenement-du-lot")  # what the batch's pour() left current

    async def scenario() -> None:
        _current_event.set(weakref.ref(evenement))  # type: ignore[arg-type]
        assert current_event() is evenement
        await ag.reconstruire_partiels(frozenset(range(PARTITIONS)), pas=7).tache

    asyncio.run(scenario())
    assert vus and all(e is None for e in vus)
    assert _totaux(ag) == Counter({k: n for k, n in _recompte(cycles).items() if n})
