"""A real Confluent-compatible Schema Registry for the tests: Apicurio Registry, from Maven Central.

- :func:`fetch_registry` unpacks Apicurio's prebuilt distribution once into
  ``~/.cache/aiguillage/apicurio-<version>/`` with Maven (``tests/registry/pom.xml`` says what
  and why this version); a ``.complete`` marker makes later calls free.
- :class:`RealSchemaRegistry` runs it on a free loopback port (in-memory storage, small heap,
  logs to a file in a temporary directory), with BACKWARD as the global compatibility rule, and
  stops it on exit. ``.url`` is the Confluent-compatible base the hub's client takes.

CI fetches it before the tests: ``python3 -m tests.registry_util fetch`` (prints the cache path).
Standard library only, so that this runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

APICURIO_VERSION = "3.0.9"
POM = Path(__file__).resolve().parent / "registry" / "pom.xml"
RUNNER = f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"
COMPLETE = ".complete"
CCOMPAT = "/apis/ccompat/v7"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryUnavailable(RuntimeError):
    """The registry cannot be had here (no mvn, no java, Maven failed): the tests are skipped."""


class RegistryStartError(RuntimeError):
    """The registry is here but did not start or answer: a failure, not a skip."""


def cache_dir() -> Path:
    return Path.home() / ".cache" / "aiguillage" / f"apicurio-{APICURIO_VERSION}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two pytest workers (or CI and a developer) may fetch at once: one unpacks, the other waits.
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_registry() -> Path:
    """The unpacked registry, fetched from Maven Central on the first call only."""
    target = cache_dir()
    if (target / COMPLETE).is_file():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RegistryUnavailable("mvn is not on PATH: cannot fetch Apicurio Registry from Maven Central")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f"{target.name}.lock"):
        if (target / COMPLETE).is_file():  # fetched by whoever held the lock before us
            return target
        # Unpacked beside the target, then renamed: a half-fetched directory is never taken as done.
        partial = target.with_name(f"{target.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        print(f"fetching Apicurio Registry {APICURIO_VERSION} from Maven Central into {target} (~110 MB, once)",
              file=sys.stderr, flush=True)
        started = time.monotonic()
        command = [mvn, "-B", "-ntp", "-Dstyle.color=never", "-f", str(POM), "initialize",
                   f"-Dapicurio.version={APICURIO_VERSION}", f"-Dregistry.dir={partial}"]
        tail: collections.deque[str] = collections.deque(maxlen=40)
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              text=True) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                tail.append(line.rstrip())
                print(f"  mvn: {line.rstrip()}", file=sys.stderr, flush=True)
        if proc.returncode != 0 or not (partial / RUNNER).is_file():
            shutil.rmtree(partial, ignore_errors=True)
            errors = [line for line in tail if line.startswith("[ERROR]")][:4] or list(tail)[-8:]
            raise RegistryUnavailable(
                f"fetching Apicurio Registry {APICURIO_VERSION} failed (mvn exit {proc.returncode}, "
                f"{' '.join(command)}):\n" + "\n".join(errors)
            )
        (partial / COMPLETE).write_text(f"{APICURIO_VERSION}\n", encoding="utf-8")
        partial.rename(target)
        print(f"Apicurio Registry {APICURIO_VERSION} fetched in {time.monotonic() - started:.0f} s",
              file=sys.stderr, flush=True)
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).is_file():
        raise RegistryUnavailable("no java (17 or later) found (JAVA_HOME or PATH) to run Apicurio Registry")
    return java


class RealSchemaRegistry:
    """Apicurio Registry as a child process on 127.0.0.1, for the length of a ``with`` block."""

    def __init__(self, heap: str = "384m", start_timeout: float = 120.0) -> None:
        self.heap = heap
        self.start_timeout = start_timeout
        self.port = 0
        self.log_file: Path | None = None
        self.start_seconds = 0.0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The Confluent-compatible base URL (what AIGUILLAGE_SCHEMA_REGISTRY takes)."""
        return f"http://127.0.0.1:{self.port}{CCOMPAT}"

    def __enter__(self) -> Self:
        home = fetch_registry()
        java = _java()
        self._tmp = tempfile.TemporaryDirectory(prefix="apicurio-")
        tmp = Path(self._tmp.name)
        self.log_file = tmp / "registry.log"
        self.port = _free_port()
        command = [
            java, f"-Xmx{self.heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",  # small and quick on 2 cores
            f"-Djava.io.tmpdir={tmp}",
            "-Dquarkus.http.host=127.0.0.1", f"-Dquarkus.http.port={self.port}",
            # In-memory storage is the distribution's default (H2 in memory); said here to be sure.
            "-Dapicurio.storage.kind=sql", "-Dapicurio.storage.sql.kind=h2",
            # The default rule for subjects with none of their own; PUT /config below says it too.
            "-Dapicurio.rules.global.compatibility=BACKWARD",
            "-Dquarkus.http.access-log.enabled=false", '-Dquarkus.log.category."io.apicurio".level=WARN',
            f"-Dapicurio.import.work-dir={tmp}", f"-Dapicurio.storage.snapshot.location={tmp}",
            "-jar", str(home / RUNNER),
        ]
        started = time.monotonic()
        with open(self.log_file, "wb") as log:
            self._proc = subprocess.Popen(command, cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
        try:
            self._wait_until_up()
            self.start_seconds = time.monotonic() - started
            # The hub expects a BACKWARD registry: set the global level the Confluent way and check it.
            self.call("PUT", "/config", {"compatibility": "BACKWARD"})
            level = self.call("GET", "/config").get("compatibilityLevel")
            if level != "BACKWARD":
                raise RegistryStartError(f"Apicurio Registry kept compatibility level {level!r}, not BACKWARD")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 15.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def log_tail(self, chars: int = 3000) -> str:
        if self.log_file is None or not self.log_file.exists():
            return ""
        return self.log_file.read_text(errors="replace")[-chars:]

    def _wait_until_up(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                raise RegistryStartError(
                    f"Apicurio Registry exited with status {self._proc.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                self.call("GET", "/subjects", timeout=2.0)
                return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RegistryStartError(
                    f"Apicurio Registry did not answer within {self.start_timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    # -- the registry's REST API, for the tests ----------------------------------------------

    def call(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        """One request to the Confluent-compatible API; HTTPError (with the registry's JSON) if refused."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE}
        )
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")

    def subjects(self) -> list[str]:
        return list(self.call("GET", "/subjects"))

    def versions(self, subject: str) -> list[int]:
        return list(self.call("GET", f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"))

    def latest_id(self, subject: str) -> int:
        return int(self.call("GET", f"/subjects/{urllib.parse.quote(subject, safe='')}/versions/latest")["id"])

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` under ``subject`` as another producer would; its id."""
        quoted = urllib.parse.quote(subject, safe="")
        return int(self.call("POST", f"/subjects/{quoted}/versions", {"schema": schema})["id"])

    def clear(self) -> None:
        """Delete every subject for good (soft delete, then permanent, as Confluent requires)."""
        for subject in self.subjects():
            quoted = urllib.parse.quote(subject, safe="")
            self.call("DELETE", f"/subjects/{quoted}")
            self.call("DELETE", f"/subjects/{quoted}?permanent=true")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.registry_util", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["fetch"], help="fetch: fetch the registry once, print its directory")
    parser.parse_args(argv)
    try:
        print(fetch_registry())
    except RegistryUnavailable as exc:
        print(f"!!! {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
