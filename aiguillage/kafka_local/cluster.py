"""A local Apache Kafka in KRaft mode, from its Maven Central jars: one node or three.

Each node is a combined broker + controller JVM on loopback. The data directory holds, per
node, its properties, its log and its log dirs, and ``cluster.json`` (cluster id, ports,
SCRAM passwords): a second start on the same directory reuses them, so the bootstrap servers
and the data survive a restart. Storage is formatted on the first start only.

With ``secure=True`` clients reach the brokers over SASL_SSL with SCRAM-SHA-512 (a CA and a
broker certificate made at the first start), the StandardAuthorizer denies what no ACL allows,
and the controllers speak SASL PLAIN to each other: no listener answers an anonymous client.

Used by ``aiguillage kafka up``, the test fixtures and ``aiguillage bench --broker kafka``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from aiguillage.broker import free_port
from aiguillage.kafka_local import jars
from aiguillage.kafka_local import secure as security
from aiguillage.runtime import die_with_parent

log = logging.getLogger(__name__)
MECHANISM = "SCRAM-SHA-512"


class LocalKafkaError(RuntimeError):
    """The local cluster cannot start as asked (a busy port, another layout on the same data)."""


@dataclass(frozen=True)
class NodePorts:
    node_id: int
    port: int  # clients and inter-broker traffic
    controller_port: int


@dataclass(frozen=True)
class ClusterLayout:
    """What must not change between two starts on the same data directory."""

    version: str
    cluster_id: str
    secure: bool
    nodes: tuple[NodePorts, ...]
    passwords: dict[str, str]

    @classmethod
    def new(cls, nodes: int, secure_: bool, version: str) -> ClusterLayout:
        ports = tuple(NodePorts(i, free_port(), free_port()) for i in range(1, nodes + 1))
        # Kafka's Uuid: 16 random bytes, base64url without padding (one starting with '-' is refused).
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        return cls(version, cluster_id, secure_, ports, security.new_passwords() if secure_ else {})

    @classmethod
    def load(cls, path: Path) -> ClusterLayout:
        raw = json.loads(path.read_text())
        return cls(raw["version"], raw["cluster_id"], raw["secure"],
                   tuple(NodePorts(**n) for n in raw["nodes"]), raw["passwords"])

    def save(self, path: Path) -> None:
        path.touch(mode=0o600)  # it holds the SCRAM passwords
        path.write_text(json.dumps(asdict(self), indent=2))


def _jaas(module: str, user: str, password: str, extra: str = "") -> str:
    return f'org.apache.kafka.common.security.{module} required username="{user}" password="{password}"{extra};'


class LocalKafka:
    """Start, stop, crash and restart the nodes of a local Kafka. A context manager too."""

    def __init__(self, data_dir: Path | None = None, nodes: int = 1, secure: bool = False,
                 heap_mb: int = 512, version: str = jars.KAFKA_VERSION) -> None:
        if nodes not in (1, 3):
            raise LocalKafkaError(f"--nodes must be 1 or 3, not {nodes}")
        self._ephemeral = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="aiguillage-kafka-")).resolve()
        self.heap_mb = heap_mb
        self.layout = self._layout(nodes, secure, version)
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    # -- what clients need ----------------------------------------------------------------

    embedded = False  # the production path: no embedded-broker workaround applies

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.layout.nodes)

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def secure(self) -> bool:
        return self.layout.secure

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    def client_env(self, principal: str = security.SUPER_USER) -> dict[str, str]:
        """The AIGUILLAGE_* variables a hub process needs to reach this cluster as ``principal``."""
        env = {"AIGUILLAGE_BROKER": self.url}
        if self.secure:
            env.update(
                AIGUILLAGE_SECURITY_PROTOCOL="SASL_SSL", AIGUILLAGE_SASL_MECHANISM=MECHANISM,
                AIGUILLAGE_SASL_USERNAME=principal, AIGUILLAGE_SASL_PASSWORD=self.layout.passwords[principal],
                AIGUILLAGE_SSL_CAFILE=str(self.ca_file),
            )
        return env

    def client_kwargs(self, principal: str = security.SUPER_USER) -> dict[str, Any]:
        """aiokafka client arguments (bootstrap included) for ``principal``."""
        kwargs: dict[str, Any] = {"bootstrap_servers": self.bootstrap}
        if self.secure:
            kwargs.update(
                security_protocol="SASL_SSL", sasl_mechanism=MECHANISM, sasl_plain_username=principal,
                sasl_plain_password=self.layout.passwords[principal],
                ssl_context=create_ssl_context(cafile=str(self.ca_file)),
            )
        return kwargs

    # -- life cycle -------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> Self:
        classpath = jars.classpath(self.layout.version)
        self._check_ports()
        for node in self.layout.nodes:
            self._format(node, classpath)
        for node in self.layout.nodes:
            self.start_node(node.node_id, wait=False)
        try:
            self.wait_ready(timeout)
            self.wait_group_coordinator(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def start_node(self, node_id: int, wait: bool = True, timeout: float = 60.0) -> None:
        """Start one node (again, after a kill): its data is where it was."""
        node = self._node(node_id)
        directory = self._node_dir(node)
        out = open(directory / "stdout.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes[node_id] = subprocess.Popen(
            [jars.java(), f"-Xmx{self.heap_mb}m", f"-Xms{min(self.heap_mb, 256)}m", "-XX:+ExitOnOutOfMemoryError",
             "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={jars.LOG4J}",
             f"-Daiguillage.kafka.log={directory / 'kafka.log'}",
             "-cp", jars.classpath(self.layout.version), "kafka.Kafka", str(directory / "server.properties")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            process_group=0,  # a terminal's Ctrl-C reaches our process only, which stops the nodes in order
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - only a prctl call, see die_with_parent
        )
        out.close()
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until every running node is a broker the metadata lists (each node answers)."""
        deadline = time.monotonic() + timeout
        expected = {n for n, p in self.processes.items() if p.poll() is None}
        last: object = None
        while time.monotonic() < deadline:
            for node_id, proc in self.processes.items():
                if proc.poll() is not None and node_id in expected:
                    raise LocalKafkaError(
                        f"Kafka node {node_id} exited with status {proc.returncode}:\n{self.log_tail(node_id)}")
            try:
                brokers = asyncio.run(self._brokers())
                if expected <= brokers:
                    return
                last = f"brokers {sorted(brokers)} of {sorted(expected)}"
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                last = exc
            time.sleep(0.3)
        raise LocalKafkaError(f"the local Kafka was not ready within {timeout:.0f} s ({last})")

    def wait_group_coordinator(self, timeout: float = 90.0) -> None:
        """Until a consumer group finds its coordinator: Kafka creates ``__consumer_offsets`` on the
        first request for it, and on a busy machine the first group to join waited long for it."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                asyncio.run(self._coordinator())
                return
            except Exception as exc:  # noqa: BLE001 - GroupCoordinatorNotAvailable while it is created
                last = exc
            time.sleep(0.3)
        raise LocalKafkaError(f"no group coordinator within {timeout:.0f} s ({last})")

    async def _coordinator(self) -> int:
        admin = AIOKafkaAdminClient(request_timeout_ms=5000, **self.client_kwargs())
        await admin.start()
        try:
            return await admin.find_coordinator("aiguillage-ready")
        finally:
            await admin.close()

    async def _brokers(self) -> set[int]:
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refusals while it boots
        client = AIOKafkaClient(request_timeout_ms=3000, **self.client_kwargs())
        try:
            await client.bootstrap()
            alive = {n.node_id for n in self.layout.nodes if self.processes.get(n.node_id)
                     and self.processes[n.node_id].poll() is None}
            brokers: set[int] = set()
            for node_id in alive:  # each running node answers metadata itself
                if await client.ready(node_id):
                    brokers.add(node_id)
            return brokers & {b.nodeId for b in client.cluster.brokers()}
        finally:
            await client.close()

    def wait_in_sync(self, timeout: float = 120.0) -> None:
        """Until every partition has all its replicas in sync (after a node came back)."""
        deadline = time.monotonic() + timeout
        behind: list[str] = []
        while time.monotonic() < deadline:
            behind = asyncio.run(self._under_replicated())
            if not behind:
                return
            time.sleep(0.5)
        raise LocalKafkaError(f"{len(behind)} partition(s) still under-replicated after {timeout:.0f} s: {behind[:5]}")

    async def _under_replicated(self) -> list[str]:
        admin = AIOKafkaAdminClient(request_timeout_ms=5000, **self.client_kwargs())
        await admin.start()
        try:
            described = await admin.describe_topics(await admin.list_topics())
        finally:
            await admin.close()
        return [f"{t['topic']}[{p['partition']}]" for t in described for p in t["partitions"]
                if len(p["isr"]) < len(p["replicas"])]

    def stop(self, timeout: float = 30.0) -> None:
        """A clean stop (SIGTERM: controlled shutdown), SIGKILL past ``timeout``."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node_id, proc in list(self.processes.items()):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            del self.processes[node_id]
        if self._ephemeral:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: a crash, with no controlled shutdown."""
        proc = self.processes.pop(node_id)
        proc.kill()
        proc.wait()

    def pause(self) -> None:
        """Freeze every node (SIGSTOP): clients see brokers that no longer answer."""
        for proc in self.processes.values():
            proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        for proc in self.processes.values():
            proc.send_signal(signal.SIGCONT)

    def log_tail(self, node_id: int, lines: int = 30) -> str:
        directory = self._node_dir(self._node(node_id))
        text = ""
        for name in ("kafka.log", "stdout.log"):
            path = directory / name
            if path.exists():
                text += "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
        return text

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- storage and properties -----------------------------------------------------------

    def _layout(self, nodes: int, secure_: bool, version: str) -> ClusterLayout:
        path = self.data_dir / "cluster.json"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            layout = ClusterLayout.new(nodes, secure_, version)
            layout.save(path)
            return layout
        layout = ClusterLayout.load(path)
        if (len(layout.nodes), layout.secure, layout.version) != (nodes, secure_, version):
            raise LocalKafkaError(
                f"{self.data_dir} holds a cluster of {len(layout.nodes)} node(s), "
                f"{'secured' if layout.secure else 'plaintext'}, Kafka {layout.version}: start it the same way, "
                "or give another --data directory")
        return layout

    def _check_ports(self) -> None:
        import socket

        for node in self.layout.nodes:
            if node.node_id in self.processes:
                continue
            for port in (node.port, node.controller_port):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        raise LocalKafkaError(
                            f"port {port} of node {node.node_id} is taken: is this cluster already running "
                            f"(data {self.data_dir})?")

    def _node(self, node_id: int) -> NodePorts:
        return next(n for n in self.layout.nodes if n.node_id == node_id)

    def _node_dir(self, node: NodePorts) -> Path:
        return self.data_dir / f"node-{node.node_id}"

    def _format(self, node: NodePorts, classpath: str) -> None:
        directory = self._node_dir(node)
        directory.mkdir(parents=True, exist_ok=True)
        props = directory / "server.properties"
        props.write_text(self._properties(node))  # rewritten at each start: the code's settings win
        if (directory / "data" / "meta.properties").exists():
            return
        if self.secure and not self.ca_file.exists():
            security.make_certificates(self.ca_file.parent)
        command = [jars.java(), "-cp", classpath, "kafka.tools.StorageTool", "format",
                   "-t", self.layout.cluster_id, "-c", str(props)]
        if len(self.layout.nodes) == 1:
            command.append("--standalone")
        for name, password in self.layout.passwords.items():
            command += ["--add-scram", f"{MECHANISM}=[name={name},password={password}]"]
        proc = subprocess.run(command, capture_output=True, text=True, check=False,
                              env={**os.environ, "KAFKA_LOG4J_OPTS": ""})
        if proc.returncode != 0:
            raise LocalKafkaError(f"formatting node {node.node_id} failed:\n{proc.stdout}{proc.stderr}")

    def _properties(self, node: NodePorts) -> str:
        n = len(self.layout.nodes)
        replication = 3 if n >= 3 else 1
        isr = 2 if n >= 3 else 1
        voters = ",".join(f"{x.node_id}@127.0.0.1:{x.controller_port}" for x in self.layout.nodes)
        props = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "listeners": f"CLIENT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"CLIENT://127.0.0.1:{node.port}",
            "inter.broker.listener.name": "CLIENT",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": self._node_dir(node) / "data",
            "num.partitions": 1,
            "default.replication.factor": replication,
            "min.insync.replicas": isr,
            "offsets.topic.replication.factor": replication,
            "offsets.topic.num.partitions": 10,  # 50 by default: a slow start on 2 cores for nothing
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": isr,
            "share.coordinator.state.topic.replication.factor": replication,
            "share.coordinator.state.topic.min.isr": isr,
            "group.initial.rebalance.delay.ms": 0,
            # The hub creates its topics (aiguillage topics create) and Faust declares its own:
            # a typo in a topic name must fail, not make a topic.
            "auto.create.topics.enable": "false",
        }
        if n == 1:
            props["controller.quorum.bootstrap.servers"] = f"127.0.0.1:{node.controller_port}"
        else:
            props["controller.quorum.voters"] = voters
        if not self.secure:
            props["listener.security.protocol.map"] = "CONTROLLER:PLAINTEXT,CLIENT:PLAINTEXT"
            return "".join(f"{k}={v}\n" for k, v in props.items())
        admin = self.layout.passwords[security.SUPER_USER]
        tls = self.ca_file.parent
        props.update({
            "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_SSL",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": _jaas(
                "plain.PlainLoginModule", security.SUPER_USER, admin, f' user_{security.SUPER_USER}="{admin}"'),
            "listener.name.client.sasl.enabled.mechanisms": MECHANISM,
            "listener.name.client.scram-sha-512.sasl.jaas.config": _jaas(
                "scram.ScramLoginModule", security.SUPER_USER, admin),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": tls / "broker.pem",
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": tls / "ca.pem",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{security.SUPER_USER}",
            "allow.everyone.if.no.acl.found": "false",
        })
        return "".join(f"{k}={v}\n" for k, v in props.items())
