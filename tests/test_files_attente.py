"""The waiting files' index on disk gives the same file order as in memory, and a rebuild in slices
the files of the table (streams/waiting_files.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faust
from hypothesis import given, settings
from hypothesis import strategies as st

from aiguillage.routing.equipe import en_file
from aiguillage.routing.priorite import EnAttente
from streams.waiting_files import FilesEnMemoire, FilesSurDisque, Reconstruction, instantane

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


# -- the rebuild in slices, the team agent writing between two -----------------------------------

EQUIPES = ["eq-31", "eq-34"]


def _stocke(equipe: str, p: int, age: int, etat: str) -> dict:
    """A dossier as the ``dossiers`` table holds it (the fields a file reads)."""
    return {"equipe": equipe, "priorite": p, "recu_le": (MAINTENANT - timedelta(microseconds=age)).isoformat(),
            "assistant": "A1" if etat == "placé" else None, "special": etat == "spécial", "lie_a": None}


dossier = st.tuples(st.sampled_from(EQUIPES), st.integers(1, 9), st.integers(0, 10**12),
                    st.sampled_from(["attente", "attente", "placé", "spécial"]))
ecriture = st.tuples(st.integers(0, 40), st.one_of(st.none(), dossier))  # None: the dossier goes


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.integers(0, 40), dossier, max_size=40),
       st.lists(st.tuples(st.integers(1, 7), st.lists(ecriture, max_size=4)), max_size=12),
       st.booleans(), st.booleans())
def test_a_rebuild_in_slices_gives_the_files_of_the_table_as_it_ends(tmp_path_factory, table, tours, sur_disque,
                                                                      achever) -> None:  # type: ignore[no-untyped-def]
    """The pass reads the table as it began (a RocksDB iterator's snapshot); between its slices the
    agent writes dossiers and files them itself: the files end as a recount of the final table."""
    dossiers = {f"s{n:03d}": _stocke(*d) for n, d in table.items()}
    files = (FilesSurDisque(Path(tmp_path_factory.mktemp("attente")) / f"f{next(compteur)}") if sur_disque
             else FilesEnMemoire())
    try:
        r = Reconstruction(files, list(dossiers.items()))
        for pas, ecritures in tours:
            r.tranche(pas)
            for n, d in ecritures:  # as the team agent's ecrire does
                sid = f"s{n:03d}"
                ancien = dossiers.pop(sid, None)
                if d is not None:
                    dossiers[sid] = _stocke(*d)
                r.ecrit(sid)
                if ancien is not None:  # an OterDossier, or a PoserDossier filing it elsewhere or nowhere
                    files.retirer(ancien["equipe"], sid)
                if d is not None and (item := en_file(sid, dossiers[sid])) is not None:
                    files.ajouter(*item)
        if achever:
            r.tranche()
        else:
            while not r.fini:
                r.tranche(3, duree=0.5)
        assert r.fini and r.lus == len(table)
        attendu = FilesEnMemoire()
        attendu.ajouter_neufs(i for sid, d in dossiers.items() if (i := en_file(sid, d)) is not None)
        for equipe in EQUIPES:
            assert list(files.en_ordre(equipe, MAINTENANT, 10)) == list(attendu.en_ordre(equipe, MAINTENANT, 10))
    finally:
        files.fermer()


def test_the_pass_skips_what_the_agent_wrote_after_it_began() -> None:
    dossiers = {f"s{n:03d}": _stocke("eq-31", 5, n, "attente") for n in range(10)}
    files = FilesEnMemoire()
    r = Reconstruction(files, list(dossiers.items()))  # the table as the pass began
    r.tranche(2)
    for sid, etat in (("s005", "placé"), ("s008", "attente")):  # given a caseworker; escalated to priority 1
        dossiers[sid] = _stocke("eq-31", 1 if etat == "attente" else 5, 8, etat)
        r.ecrit(sid)
        files.retirer("eq-31", sid)
        if (item := en_file(sid, dossiers[sid])) is not None:
            files.ajouter(*item)
    r.tranche()
    ordre = [i.signalement_id for i in files.en_ordre("eq-31", MAINTENANT, 10)]
    assert ordre == ["s008", "s009", "s007", "s006", "s004", "s003", "s002", "s001", "s000"]
    assert r.fini and r.lus == 10 and r.en_attente == 8  # the two the agent wrote are its own


def test_a_pass_over_a_table_in_memory_survives_the_agent_s_writes() -> None:
    """Faust's memory store is a dict, whose iterator breaks at the first write during the pass
    (every rebuild failed so with ``memory://`` tables): the pass reads a copy."""
    app = faust.App("t-instantane", broker="kafka://127.0.0.1:1", store="memory://")
    table = app.Table("dossiers")
    for n in range(5):
        table.data[f"s{n:03d}"] = _stocke("eq-31", 5, n, "attente")
    files = FilesEnMemoire()
    r = Reconstruction(files, instantane(table))
    r.tranche(2)
    table.data["s009"] = _stocke("eq-31", 1, 0, "attente")  # the agent files a new one meanwhile
    r.ecrit("s009")
    files.ajouter(*en_file("s009", table.data["s009"]))  # type: ignore[misc]
    table.data["s004"] = _stocke("eq-31", 5, 4, "placé")  # and gives another a caseworker
    r.ecrit("s004")
    files.retirer("eq-31", "s004")
    r.tranche()
    assert r.fini and [i.signalement_id for i in files.en_ordre("eq-31", MAINTENANT, 10)] == \
        ["s009", "s003", "s002", "s001", "s000"]


def test_an_abandoned_pass_lets_go_of_the_table_s_iterator_at_once() -> None:
    """A rebalance abandons the pass: the iterator (on RocksDB, it holds the partition's database
    and its lock, which Faust needs again to reopen it) is closed then, not at the task's next turn."""
    ouvert = []

    def entrees():
        ouvert.append(True)
        try:
            for n in range(100):
                yield f"s{n:03d}", _stocke("eq-31", 5, n, "attente")
        finally:
            ouvert.pop()

    r = Reconstruction(FilesEnMemoire(), entrees())
    r.tranche(10)
    assert ouvert
    r.abandonner()
    assert not ouvert and r.lus == 10
