"""``aiguillage up`` as a real process tree for the tests: start it, post batches as a partner would,
crash what the test names, read its SQLite, check nothing of it is left running."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

from aiguillage import nir
from aiguillage.broker import free_port
from aiguillage.runtime import wait_http
from tests.conftest import ROOT

TOKEN = re.compile(r"token\s+(\S+)\s+(aig_\S+)")
STAFF = re.compile(r"staff\s+(\S+)\s+(ey\S+)")  # the development issuer's token per demo role
ENTETE = ("reference;nir;sexe;date_naissance;commune_insee;code_postal;situation;risque;"
          "date_debut_arret;jours_arret;motif;axe_propose;consentement;commentaire\n")
LIEUX = [("31555", "31000"), ("31483", "31800"), ("34172", "34000"), ("12202", "12000"), ("81004", "81000")]
MOTIFS = ["arret-long", "inaptitude", "retard-paiement-ij", "acces-aux-soins", "rqth"]


def lot_service_medical(prefix: str, start: int, count: int, seed: int = 7) -> bytes:
    """A service-médical CSV of ``count`` valid rows, references ``<prefix>-<n>``."""
    rng = random.Random(seed + start)
    lines = ["\ufeff" + ENTETE]
    for i in range(start, start + count):
        commune, postal = LIEUX[i % len(LIEUX)]
        corps = (f"{rng.choice('12')}{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}{commune[:2]}"
                 f"{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}")
        lines.append(f"{prefix}-{i:06d};{nir.avec_cle(corps)};{rng.choice('12')};14/06/1975;{commune};{postal};"
                     f"salarie;maladie;02/08/2026;{rng.randint(30, 300)};{MOTIFS[i % len(MOTIFS)]};;O;\n")
    return "".join(lines).encode()


def alive(pids: set[int] | list[int]) -> set[int]:
    """The pids that still run (zombies do not)."""
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = {int(c) for c in (task / "children").read_text().split()}
            except OSError:
                continue
            todo += list(kids - found)
            found |= kids
    return found


@dataclass
class Up:
    """One ``aiguillage up`` on ``data``; several may follow each other on the same directory."""

    data: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    staff: dict[str, str] = field(default_factory=dict)
    tree: set[int] = field(default_factory=set)  # every process seen under it

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def banner(self) -> Path:
        return self.data.parent / f"up-{self.port}.err"

    def start(self, *extra: str, timeout: float = 120) -> Up:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIGUILLAGE_")}  # a newcomer's shell
        env.update({"AIGUILLAGE_CHECKPOINT_INTERVAL": "2", "AIGUILLAGE_AGREGATS_INTERVALLE": "1", **self.env})
        with self.banner.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "aiguillage", "up", "--port", str(self.port), "--data-dir", str(self.data), *extra],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
            )
        wait_http(f"{self.base}/healthz", timeout=timeout, proc=self.proc)
        deadline = time.monotonic() + 30
        while "Aiguillage is up" not in self.banner.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.tokens = dict(TOKEN.findall(self.banner.read_text()))
        self.staff = dict(STAFF.findall(self.banner.read_text()))
        self.look()
        return self

    def entete(self, role: str = "responsable") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.staff[role]}"}

    def look(self) -> set[int]:
        assert self.proc is not None
        self.tree |= descendants(self.proc.pid)
        return self.tree

    def state(self) -> dict:
        return json.loads((self.data / "up.json").read_text())

    def child(self, name: str) -> int:
        return int(self.state()["children"][name])

    def post(self, body: bytes, source: str = "service-medical", content_type: str = "text/csv",
             patience: float = 120.0) -> list[str]:
        """Post as a partner does: a 503 or no answer is tried again later, for ``patience`` seconds
        (a restarted broker can take half a minute to answer on a loaded machine: 30 attempts, about
        6 s, once ran out in CI); the ids answered 202."""
        deadline, attempts = time.monotonic() + patience, 0
        while time.monotonic() < deadline:
            attempts += 1
            try:
                resp = httpx.post(f"{self.base}/v1/signalements/{source}", content=body, timeout=30,
                                  headers={"Authorization": f"Bearer {self.tokens[source]}", "Content-Type": content_type})
            except httpx.HTTPError:
                time.sleep(1)
                continue
            if resp.status_code == 202:
                data = resp.json()
                return data.get("publies") or [data["signalement_id"]]
            assert resp.status_code == 503, resp.text
            time.sleep(float(resp.headers.get("Retry-After", "1")) / 5)
        raise AssertionError(f"no 202 after {attempts} attempts in {patience:.0f} s")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 120) -> int:
        assert self.proc is not None
        self.look()
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def logs(self) -> str:
        out = self.banner.read_text(errors="replace")[-3000:] if self.banner.exists() else ""
        for path in sorted((self.data / "log").glob("*.log")):
            out += f"\n== {path.name}\n" + path.read_text(errors="replace")[-2500:]
        return out


def rows(data: Path, ids: set[str] | None = None) -> dict[str, dict]:
    """signalement_id -> its affectations row (SQLite of ``up``)."""
    engine = sa.create_engine(f"sqlite:///{data / 'aiguillage.db'}")
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT * FROM affectations")).mappings().all()
    except sa.exc.OperationalError:
        return {}
    finally:
        engine.dispose()
    return {r["signalement_id"]: dict(r) for r in found if ids is None or r["signalement_id"] in ids}


def wait_rows(up: Up, ids: set[str], timeout: float = 180) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    found: dict[str, dict] = {}
    while time.monotonic() < deadline:
        found = rows(up.data, ids)
        if set(found) == ids:
            return found
        up.look()
        time.sleep(0.5)
    raise AssertionError(f"{len(ids - set(found))} of {len(ids)} acknowledged signalements not in SQL "
                         f"after {timeout:.0f} s\n{up.logs()}")
