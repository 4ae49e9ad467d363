"""``aiguillage bench --profile``: where the hub's CPU goes while it drains its backlog, by py-spy.

py-spy samples the hub process from outside (``--nonblocking``: it never pauses it), and writes
its stacks collapsed, one line per distinct stack with its sample count. :func:`resumer` turns
them into what a reader acts on: the share of the samples by layer of the frame that was running
(the hub's own code, Faust, aiokafka, pydantic, the event loop), the frames that ran most, and the
share of each of the hub's agents and timers with everything they call (the rest is Faust's and
aiokafka's own tasks: fetching, the producer's buffer, commits).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

TAUX_HZ = 100  # samples per second: ~2,000 over a 20-second drain, a few % of one core for py-spy
HUB = ("aiguillage", "streams", "connectors", "sinks")
# A frame's layer, by the first of these its file path holds (site-packages or the standard library).
COUCHES = (
    ("faust", "faust/"), ("faust", "mode/"), ("aiokafka", "aiokafka/"), ("pydantic", "pydantic"),
    ("fastavro", "fastavro/"), ("prometheus", "prometheus_client/"), ("rocksdb", "rocksdict"),
    ("event loop", "asyncio/"), ("event loop", "selectors.py"), ("event loop", "uvloop"),
)
TACHE = "install.<locals>."  # the hub's agents and timers are defined in their module's install()


class ProfilIndisponible(RuntimeError):
    """py-spy is not installed, or cannot attach to the process."""


def executable() -> str:
    """py-spy, next to this interpreter (a venv) or on the PATH."""
    voisin = Path(sys.executable).with_name("py-spy")
    trouve = str(voisin) if voisin.exists() else shutil.which("py-spy")
    if trouve is None:
        raise ProfilIndisponible("--profile needs py-spy: pip install 'aiguillage[bench]' (or pip install py-spy)")
    return trouve


class Enregistrement:
    """py-spy recording one process until :meth:`arreter` (SIGINT: py-spy writes its file then)."""

    def __init__(self, pid: int, sortie: Path, journal: Path) -> None:
        self.sortie = sortie
        with open(journal, "wb") as log:
            self.proc = subprocess.Popen(
                [executable(), "record", "--pid", str(pid), "--rate", str(TAUX_HZ), "--format", "raw",
                 "--output", str(sortie), "--nonblocking"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def arreter(self, timeout: float = 30.0) -> dict:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if not self.sortie.exists():
            raise ProfilIndisponible(f"py-spy wrote no profile (exit status {self.proc.returncode}); "
                                     "attaching needs ptrace rights over the hub's process")
        return resumer(self.sortie.read_text(encoding="utf-8").splitlines())


def _cadre(frame: str) -> tuple[str, str]:
    """``function (path:line)`` -> (``function (file)``, path)."""
    nom, _, lieu = frame.partition(" (")
    chemin = lieu.rstrip(")").rsplit(":", 1)[0]
    return f"{nom} ({'/'.join(chemin.split('/')[-2:])})", chemin


def couche(chemin: str) -> str:
    for nom, marque in COUCHES:
        if marque in chemin:
            return nom
    if any(f"/{p}/" in f"/{chemin}" for p in HUB):  # a checkout or site-packages: the hub's packages
        return "hub"
    return "other"


def resumer(lignes: Iterable[str], premiers: int = 12) -> dict:
    """A summary of py-spy's collapsed stacks ("frame;frame;... count", the root first)."""
    total, par_couche, propre, taches = 0, Counter[str](), Counter[str](), Counter[str]()
    for ligne in lignes:
        pile, _, n = ligne.rstrip().rpartition(" ")
        if not pile or not n.isdigit():
            continue
        compte, cadres = int(n), [_cadre(f) for f in pile.split(";")]
        total += compte
        nom, chemin = cadres[-1]
        par_couche[couche(chemin)] += compte
        propre[nom] += compte
        tache = next((c for c, _ in cadres if TACHE in c), None)  # the outermost: an agent, not what it awaits
        if tache is not None:
            taches[tache.replace(TACHE, "")] += compte

    def part(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0
    return {
        "samples": total,
        "layers_pct": {k: part(v) for k, v in par_couche.most_common()},
        "top_self_pct": {k: part(v) for k, v in propre.most_common(premiers)},
        "tasks_pct": {k: part(v) for k, v in taches.most_common()},
    }
