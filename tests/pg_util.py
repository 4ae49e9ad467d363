"""A PostgreSQL server of a test's own (initdb in a temporary directory, its own port), for the
tests that stop the database: the shared server on 127.0.0.1:5432 keeps serving the others.

Built from the binaries .ci/postgres.sh installed; run as user ``postgres`` when the tests run as
root (the server refuses root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from aiguillage.broker import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"{name} not found under /usr/lib/postgresql (run .ci/postgres.sh)")
    return found[-1]


class PostgresPrive:
    """``with PostgresPrive() as pg``: ``pg.url``, ``pg.stop()``, ``pg.start()``; removed at exit."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
        self.directory = Path(tempfile.mkdtemp(prefix="aiguillage-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_postgres, *args], check=False, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()}")

    def __enter__(self) -> PostgresPrive:  # noqa: PYI034 - not subclassed
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        return self

    def start(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "server.log"), "-w",
                  "-o", f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1", "start")
        deadline = time.monotonic() + 30
        while subprocess.run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                             check=False).returncode:
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL on port {self.port} did not start: {self.directory}/server.log")
            time.sleep(0.2)

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def __exit__(self, *_: object) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.directory, ignore_errors=True)
