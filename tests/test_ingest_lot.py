"""``aiguillage ingest service-medical FILE`` on a national-size extract: 100,000 rows, 1% bad.

Runs on its own fresh Apache Kafka node: the test counts every record of the ingress and
dead-letter topics, which the session broker shares with other tests.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from aiguillage import nir, topics
from aiguillage.codec import AvroCodec
from aiguillage.dlq import dechiffrer
from aiguillage.kafka_local import LocalKafka
from aiguillage.runtime import child_env
from aiguillage.topics import create_topics
from tests.conftest import ROOT
from tests.kafka_util import read_topic

pytestmark = pytest.mark.kafka

ENTETE = ("reference;nir;sexe;date_naissance;commune_insee;code_postal;situation;risque;"
          "date_debut_arret;jours_arret;motif;axe_propose;consentement;commentaire\n")


def extrait(path: Path, rows: int, bad_every: int = 100) -> tuple[set[str], dict[int, str], set[bytes]]:
    """Write a service-médical extract; return the good references, the bad lines (number -> why)
    and every NIR written (13 first characters)."""
    rng = random.Random(42)
    good, bad, nirs = set(), {}, set()
    with path.open("w", encoding="utf-8") as f:
        f.write("\ufeff" + ENTETE)
        for i in range(rows):
            ligne, ref = i + 2, f"SM-LOT-{i:07d}"
            corps = f"{rng.choice('12')}{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}31{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}"
            n, naissance, motif = nir.avec_cle(corps), "14/06/1984", "arret-long"
            nirs.add(corps.encode())
            if i % bad_every == bad_every - 1:
                kind = (i // bad_every) % 3
                if kind == 0:
                    n, bad[ligne] = n[:-2] + ("00" if n[-2:] != "00" else "01"), "nir-cle-invalide"
                elif kind == 1:
                    naissance, bad[ligne] = "1984-06-14", "champ-invalide"
                else:
                    motif, bad[ligne] = "", "champ-invalide"
            else:
                good.add(ref)
            f.write(f"{ref};{n};{rng.choice('12')};{naissance};31555;31000;salarie;maladie;"
                    f"02/08/2026;{rng.randint(30, 400)};{motif};PDP;O;\n")
    return good, bad, nirs


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory):
    with LocalKafka(tmp_path_factory.mktemp("lot")) as k:
        asyncio.run(create_topics(k.bootstrap, partitions=4))
        yield k


def ingest(env: dict[str, str], path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aiguillage", "ingest", "service-medical", str(path)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)


def test_a_100k_row_extract_publishes_exactly_its_good_rows_once(own_broker, tmp_path):
    path = tmp_path / "arrets.csv"
    good, bad, nirs = extrait(path, 100_000)
    env = child_env(AIGUILLAGE_BROKER=own_broker.url, AIGUILLAGE_PSEUDONYM_KEY=secrets.token_hex(32),
                    AIGUILLAGE_DLQ_KEY=secrets.token_hex(32), AIGUILLAGE_DATA_DIR=str(tmp_path / "var"))

    first = ingest(env, path)
    assert first.returncode == 1, first.stderr  # 1: some rows rejected, the others published
    assert "read 100000, published 99000, rejected 1000" in first.stdout
    print(re.search(r"\(([\d,]+ rows/s)\)", first.stdout).group(1))
    assert all(f"line {n}: {code}" in first.stdout for n, code in bad.items())

    codec = AvroCodec()
    published = [codec.decode("Signalement", r.value) for r in read_topic(own_broker.bootstrap, topics.entrants("service-medical"))]
    assert len(published) == len(good) and {s["source_ref"] for s in published} == good
    dead = [codec.decode("DeadLetter", r.value) for r in read_topic(own_broker.bootstrap, topics.REJETES)]
    assert {d["ligne"]: d["error_code"] for d in dead} == bad and all(d["stage"] == "batch" for d in dead)
    # What the DLQ keeps of a bad row is that row under its header: a one-row file dlq replay can read.
    kept = dechiffrer(bytes.fromhex(env["AIGUILLAGE_DLQ_KEY"]), dead[0]["payload_chiffre"]).decode("utf-8-sig")
    assert kept.splitlines()[0] == ENTETE.strip() and len(kept.splitlines()) == 2

    again = ingest(env, path)
    assert again.returncode == 1 and "published 0, rejected 0" in again.stdout, again.stdout + again.stderr
    assert "1000 line(s) of this file were rejected by an earlier run" in again.stdout
    assert len(read_topic(own_broker.bootstrap, topics.entrants("service-medical"))) == len(good)
    assert len(read_topic(own_broker.bootstrap, topics.REJETES)) == len(bad)

    for topic in (topics.entrants("service-medical"), topics.REJETES):
        for rec in read_topic(own_broker.bootstrap, topic, idle=0.5):
            blob = (rec.key or b"") + rec.value
            assert not any(m in nirs for m in re.findall(rb"(?=(\d{13}))", blob)), f"a NIR in clear on {topic}"


def test_a_file_with_a_missing_column_is_refused_whole(own_broker, tmp_path):
    path = tmp_path / "sans-motif.csv"
    path.write_text(ENTETE.replace(";motif", "") + "SM-1;x;1\n", encoding="utf-8")
    env = child_env(AIGUILLAGE_BROKER=own_broker.url, AIGUILLAGE_PSEUDONYM_KEY="k" * 32,
                    AIGUILLAGE_DLQ_KEY=secrets.token_hex(32), AIGUILLAGE_DATA_DIR=str(tmp_path / "var"))
    r = ingest(env, path)
    assert r.returncode == 3 and "line 1: colonne-manquante" in r.stdout and "motif" in r.stdout
