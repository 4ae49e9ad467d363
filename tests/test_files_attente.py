"""The waiting files' index on disk gives the same file order as in memory (streams/waiting_files.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from aiguillage.routing.priorite import EnAttente
from streams.waiting_files import FilesEnMemoire, FilesSurDisque

MAINTENANT = datetime(2026, 11, 29, 12, tzinfo=UTC)
compteur = itertools.count()

ajout = st.tuples(
    st.just("+"), st.sampled_from(["eq-31", "eq-34"]), st.integers(0, 30),  # team, signalement
    st.integers(1, 9), st.integers(0, 400 * 24 * 3600 * 10**6),  # priorité, age in µs
)
retrait = st.tuples(st.just("-"), st.sampled_from(["eq-31", "eq-34"]), st.integers(0, 30))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(ajout, retrait), max_size=80), st.integers(1, 20))
def test_disk_and_memory_give_the_same_files(tmp_path_factory, operations, jours_par_niveau) -> None:  # type: ignore[no-untyped-def]
    disque = FilesSurDisque(Path(tmp_path_factory.mktemp("attente")) / f"f{next(compteur)}")
    memoire = FilesEnMemoire()
    try:
        for op in operations:
            if op[0] == "+":
                _, equipe, n, p, age = op
                # A signalement re-filed with another priority (an escalation) must leave its old place.
                item = EnAttente(f"s{n:03d}", p, MAINTENANT - timedelta(microseconds=age))
                disque.ajouter(equipe, item)
                memoire.ajouter(equipe, item)
            else:
                disque.retirer(op[1], f"s{op[2]:03d}")
                memoire.retirer(op[1], f"s{op[2]:03d}")
        for equipe in ("eq-31", "eq-34", "eq-inconnue"):
            assert list(disque.en_ordre(equipe, MAINTENANT, jours_par_niveau)) == \
                list(memoire.en_ordre(equipe, MAINTENANT, jours_par_niveau))
    finally:
        disque.fermer()


def test_a_file_on_disk_is_read_lazily_and_wiped_by_effacer(tmp_path: Path) -> None:
    files = FilesSurDisque(tmp_path / "attente")
    try:
        for i in range(1000):
            files.ajouter("eq-31", EnAttente(f"s{i:04d}", 5, MAINTENANT - timedelta(hours=i)))
        files.ajouter("eq-31", EnAttente("urgent", 1, MAINTENANT))
        premiers = files.en_ordre("eq-31", MAINTENANT, 10)
        # Priority 1 first; then the oldest priority 5 (999 h: 41 days, 4 levels gained -> 1 as well, older).
        assert [next(premiers).signalement_id for _ in range(2)] == ["s0999", "s0998"]
        files.effacer()
        assert list(files.en_ordre("eq-31", MAINTENANT, 10)) == []
    finally:
        files.fermer()
    assert not (tmp_path / "attente").exists()
