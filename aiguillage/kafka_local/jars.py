"""The Apache Kafka broker's jars, from Maven Central, fetched once into a cache outside the repository.

``pom.xml`` beside this file names the broker (``org.apache.kafka:kafka_2.13``); Maven resolves
its runtime classpath and copies it to ``~/.cache/aiguillage/kafka-<version>/libs``. Nothing
is built. A marker file says the copy is complete, so a fetch cut halfway is redone.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

KAFKA_VERSION = "4.4.0"
POM = Path(__file__).with_name("pom.xml")
LOG4J = Path(__file__).with_name("log4j2.properties")
_COMPLETE = "complete"


class KafkaJarsError(RuntimeError):
    """The jars cannot be had, or there is no Java to run them."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aiguillage"


def kafka_home(version: str = KAFKA_VERSION) -> Path:
    return cache_root() / f"kafka-{version}"


def is_fetched(version: str = KAFKA_VERSION) -> bool:
    return (kafka_home(version) / _COMPLETE).is_file()


def fetch(version: str = KAFKA_VERSION, say: Callable[[str], None] = print) -> Path:
    """The directory of the broker's jars, fetching them with Maven the first time."""
    home = kafka_home(version)
    libs = home / "libs"
    if is_fetched(version):
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:  # two test processes may ask at once: one fetches
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_fetched(version):
            _fetch(version, home, libs, say)
    return libs


def _fetch(version: str, home: Path, libs: Path, say: Callable[[str], None]) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaJarsError("Maven (mvn) is not on PATH: it fetches the Kafka jars from Maven Central")
    say(f"fetching Apache Kafka {version} from Maven Central into {libs} (once)…")
    with tempfile.TemporaryDirectory(dir=home) as work:
        shutil.copy(POM, Path(work) / "pom.xml")  # Maven may write beside its pom: not in site-packages
        staging = Path(work) / "libs"
        proc = subprocess.run(
            [mvn, "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={staging}",
             "-DincludeScope=runtime", f"-Dkafka.version={version}"],
            cwd=work, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0 or not any(staging.glob(f"kafka_2.13-{version}.jar")):
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
            raise KafkaJarsError(f"mvn could not fetch org.apache.kafka:kafka_2.13:{version}:\n" + "\n".join(tail))
        if libs.exists():
            shutil.rmtree(libs)
        staging.rename(libs)
    (home / _COMPLETE).write_text(f"{version}\n")
    say(f"Apache Kafka {version}: {sum(1 for _ in libs.glob('*.jar'))} jars in {libs}")


def java() -> str:
    """A Java 17+ executable (JAVA_HOME first, then PATH)."""
    home = os.environ.get("JAVA_HOME")
    exe = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not exe or not Path(exe).exists():
        raise KafkaJarsError("no java found (JAVA_HOME or PATH): Apache Kafka 4.x needs Java 17 or later")
    out = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    if not match or int(match.group(1)) < 17:
        raise KafkaJarsError(f"{exe} is not Java 17 or later ({out.splitlines()[0] if out else 'no answer'})")
    return exe


def classpath(version: str = KAFKA_VERSION) -> str:
    return str(fetch(version) / "*")
