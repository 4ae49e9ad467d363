"""The first-contact deadlines' index (streams/deadlines.py): the due ones, in memory or on disk."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from aiguillage.routing.cycle import echeance_a_surveiller
from streams.deadlines import EcheancesEnMemoire, EcheancesSurDisque

compteur = itertools.count()
dates = st.sampled_from(["2026-10-30", "2026-11-02", "2026-11-28", "2026-11-29", "2026-12-15", None])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 25), dates), max_size=80), st.sampled_from(["2026-11-01", "2026-11-29", "2027-01-01"]))
def test_disk_and_memory_give_the_same_due_signalements(tmp_path_factory, mises, avant) -> None:  # type: ignore[no-untyped-def]
    disque = EcheancesSurDisque(Path(tmp_path_factory.mktemp("echeances")) / f"e{next(compteur)}")
    memoire = EcheancesEnMemoire()
    attendu: dict[str, str] = {}
    try:
        for n, date in mises:  # a later write replaces the earlier one (a new deadline, or none)
            disque.mettre(f"s{n:02d}", date)
            memoire.mettre(f"s{n:02d}", date)
            attendu.pop(f"s{n:02d}", None) if date is None else attendu.__setitem__(f"s{n:02d}", date)
        dues = sorted(((s, d) for s, d in attendu.items() if d < avant), key=lambda x: (x[1], x[0]))
        assert list(disque.dues(avant)) == dues == list(memoire.dues(avant))
        disque.effacer()
        assert list(disque.dues("9999-12-31")) == []
    finally:
        disque.fermer()


def test_only_an_awaited_first_contact_whose_breach_is_not_handled_is_watched() -> None:
    aff = {"echeance_premier_contact": "2026-11-20", "equipe": "31-a"}
    assert echeance_a_surveiller({"statut": "requested", "aff": aff}) == "2026-11-20"
    assert echeance_a_surveiller({"statut": "received", "aff": aff, "escalade_pour": "2026-11-01"}) == "2026-11-20"
    assert echeance_a_surveiller({"statut": "requested", "aff": aff, "escalade_pour": "2026-11-20"}) is None
    assert echeance_a_surveiller({"statut": "accepted", "aff": aff}) is None  # taken in charge
    assert echeance_a_surveiller({"statut": None, "en_attente": []}) is None  # a suivi before its Affectation
    assert echeance_a_surveiller(None) is None
