"""``aiguillage up``: the whole hub on one machine, supervised; on its embedded broker, durable.

- Every process of the hub (worker, gateway, sinks, demo) runs as a child that the supervisor
  starts again when it dies (``aiguillage/supervisor.py``).
- Without ``AIGUILLAGE_BROKER``, the broker is the embedded one, made durable by its journal and
  the gateway's outbox (``aiguillage/embedded/``): a 202 survives a SIGKILL of any process, of the
  broker and of ``up`` itself, and a restart on the same data directory finds the hub as it was.
  If the broker dies, the hub is started again on a restored one.
- With ``AIGUILLAGE_BROKER`` (an Apache Kafka), none of that applies: Kafka keeps its promises.
- A stop (Ctrl-C, SIGTERM, the terminal closing) drains first: the gateway answers 503 with
  ``Retry-After``, the worker and sinks finish what was accepted, then everything stops, in order.
- ``<data>/up.json`` tells the other commands where this hub is (``aiguillage/running.py``).
- Without ``AIGUILLAGE_OIDC_ISSUER``, a development issuer (``aiguillage/auth/dev_issuer.py``):
  keys made at start, the JWKS served by the gateway, one ready staff token per demo role in the
  banner. With it, nothing of that: the provider is the one named.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from aiguillage import metrics, running
from aiguillage.auth import dev_issuer
from aiguillage.config import Settings
from aiguillage.embedded.durable import DurableBroker
from aiguillage.embedded.restore import Restored
from aiguillage.lag import hub_lag
from aiguillage.runtime import COMPONENTS, Hub, child_env, dev_secrets, wait_http
from aiguillage.supervisor import GaveUp, Supervisor
from aiguillage.topics import create_topics
from connectors.jetons import jetons_de_dev
from sinks import db

EXEMPLE = Path(__file__).resolve().parent.parent / "connectors" / "exemples" / "cpam.json"
SERVICES = tuple(n for n in COMPONENTS if n != "demo")
DRAIN_TIMEOUT = 60.0


class Stop:
    """Signals as flags: the first asks for a drained stop, a second one for a quick one."""

    def __init__(self) -> None:
        self.asked = 0
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: its terminal closed
            signal.signal(sig, self._ask)

    def _ask(self, *_: object) -> None:
        self.asked += 1


class Terminal(Console):
    """Where ``up`` speaks. If the terminal or the pipe is gone, it goes on quietly: a dead output
    must not stop the stop half way and leave the children running (Rich exits by default)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True


def _say(console: Console) -> Callable[[str], None]:
    def say(text: str) -> None:
        try:
            console.print(text, soft_wrap=True)
        except OSError:  # a write that fails outside Rich's own check
            console.quiet = True
    return say


def run_up(port: int, data_dir: Path, console: Console, demo: bool = False) -> int:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    say = _say(console)
    if (other := running.find(data_dir)) is not None:
        say(f"[bold red]error:[/] an aiguillage up already runs on {data_dir} (pid {other.pid}); stop it first")
        return 2
    settings = Settings(_env_file=None)  # type: ignore[call-arg]  # the environment only: this process is the one others find
    env = child_env(AIGUILLAGE_HTTP_PORT=str(port), AIGUILLAGE_DATA_DIR=str(data_dir))
    for var in dev_secrets(env, data_dir):
        say(f"[yellow]{var} not set: using the development key kept in {data_dir}/dev-keys.json[/]")
    env["AIGUILLAGE_DATABASE_URL"] = env.get("AIGUILLAGE_DATABASE_URL") or f"sqlite:///{data_dir / 'aiguillage.db'}"
    # Every child writes its metrics there; the gateway's /metrics serves them all.
    env["PROMETHEUS_MULTIPROC_DIR"] = str(data_dir / "metrics")
    metrics.preparer_multiprocess(data_dir / "metrics")
    tokens: dict[str, str] = {}
    if not env.get("AIGUILLAGE_TOKENS_FILE"):
        env["AIGUILLAGE_TOKENS_FILE"] = str(data_dir / "tokens.json")
        tokens = jetons_de_dev(Path(env["AIGUILLAGE_TOKENS_FILE"]))
    if demo and "cpam" in tokens:  # secrets by the environment, not the command line
        env["AIGUILLAGE_DEMO_JETON_CPAM"] = tokens["cpam"]
    staff = _dev_issuer(env, port, data_dir)
    hub = Hub(env, data_dir / "log")
    supervisor = Supervisor(hub, say)
    durable = None if settings.broker else DurableBroker(data_dir, say)
    stop = Stop()
    base = f"http://127.0.0.1:{port}"
    state = running.RunningUp(os.getpid(), str(data_dir), "", durable is not None, base, env["AIGUILLAGE_DATABASE_URL"],
                              env["AIGUILLAGE_TOKENS_FILE"], env.get("AIGUILLAGE_ROUTING_FILE"))
    try:
        _start_broker(durable, env, settings, say)
        db.upgrade(env["AIGUILLAGE_DATABASE_URL"])
        _start_hub(supervisor, hub, base, demo)
        state.broker, state.children = env["AIGUILLAGE_BROKER"], _children(supervisor, durable)
        state.save()
        _banner(say, env, tokens, base, hub.log_dir, data_dir, durable is not None, staff)
        _watch(supervisor, durable, stop, state, lambda: _restart_on_new_broker(supervisor, hub, durable, env,
                                                                                 settings, say, base, demo))
        return 0
    except GaveUp as exc:
        say(f"[bold red]{exc}[/]")
        return 1
    finally:
        _stop(supervisor, hub, durable, env, stop, say)
        state.forget()


def _dev_issuer(env: dict[str, str], port: int, data_dir: Path) -> dict[str, str]:
    """The development issuer, unless the environment names a provider: its public JWKS for the
    gateway to serve, and a token per demo role (the private key stays in this process)."""
    if env.get("AIGUILLAGE_OIDC_ISSUER"):
        return {}
    emetteur = dev_issuer.Emetteur(f"http://127.0.0.1:{port}{dev_issuer.CHEMIN}",
                                   env.get("AIGUILLAGE_OIDC_AUDIENCE") or "aiguillage",
                                   env.get("AIGUILLAGE_OIDC_ROLES_CLAIM") or "aiguillage_roles")
    env["AIGUILLAGE_OIDC_ISSUER"] = emetteur.issuer
    env["AIGUILLAGE_OIDC_DEV_JWKS"] = str(emetteur.publier(data_dir / "dev-oidc-jwks.json"))
    return emetteur.jetons_demo()


def _start_broker(durable: DurableBroker | None, env: dict[str, str], settings: Settings,
                  say: Callable[[str], None]) -> None:
    if durable is not None:
        say("starting the embedded broker (Tansu; kept on disk by its journal)…")
        _report(say, durable.start())
        env.update(AIGUILLAGE_BROKER=durable.url, AIGUILLAGE_EMBEDDED_BROKER="1",
                   AIGUILLAGE_OUTBOX=str(durable.outbox_path))
    bootstrap = env["AIGUILLAGE_BROKER"].split("://", 1)[-1]
    asyncio.run(create_topics(bootstrap, settings.partitions, settings.replication))


def _children(supervisor: Supervisor, durable: DurableBroker | None) -> dict[str, int]:
    pids = supervisor.pids()
    if durable is not None and durable.broker is not None and durable.broker.process is not None:
        pids["broker"] = durable.broker.process.pid
    return pids


def _report(say: Callable[[str], None], restored: Restored | None) -> None:
    if restored is not None:
        say(f"restored the last checkpoint: {restored.records:,} records, {restored.groups} consumer groups, "
            f"{restored.resent} accepted since then sent again ({restored.seconds:.1f} s)")


def _start_hub(supervisor: Supervisor, hub: Hub, base: str, demo: bool) -> None:
    for name in SERVICES:
        supervisor.start(name)
    wait_http(f"{base}/healthz", timeout=60, proc=hub.processes["gateway"])
    if demo:
        supervisor.start("demo", "--passerelle", base)


def _watch(supervisor: Supervisor, durable: DurableBroker | None, stop: Stop, state: running.RunningUp,
           new_broker: Callable[[], None]) -> None:
    interval = float(os.environ.get("AIGUILLAGE_CHECKPOINT_INTERVAL", "5"))
    next_checkpoint = time.monotonic() + interval
    while not stop.asked:
        changed = bool(supervisor.tick())
        if durable is not None and not durable.alive():
            new_broker()
            changed = True
        elif durable is not None and time.monotonic() >= next_checkpoint:
            durable.checkpoint(supervisor.pids().values())
            next_checkpoint = time.monotonic() + interval
        if changed:
            state.broker, state.children = supervisor.hub.env["AIGUILLAGE_BROKER"], _children(supervisor, durable)
            state.save()
        time.sleep(0.2)


def _restart_on_new_broker(supervisor: Supervisor, hub: Hub, durable: DurableBroker | None, env: dict[str, str],
                           settings: Settings, say: Callable[[str], None], base: str, demo: bool) -> None:
    """The embedded broker died: every process stops, a new broker gets the last checkpoint back,
    the outbox sends again what was accepted since, and the hub starts again on it."""
    assert durable is not None
    say("[bold red][up] the embedded broker died[/]: restoring its last checkpoint into a new one, "
        "then starting the hub again")
    hub.stop_all()
    durable.kill()
    _start_broker(durable, env, settings, say)
    _start_hub(supervisor, hub, base, demo)


def _stop(supervisor: Supervisor, hub: Hub, durable: DurableBroker | None, env: dict[str, str], stop: Stop,
          say: Callable[[str], None]) -> None:
    say("stopping: the gateway refuses new work (503), the rest of the hub finishes what it accepted…")
    gateway = hub.processes.get("gateway")
    if gateway is not None and gateway.poll() is None:
        gateway.send_signal(signal.SIGUSR1)
    hub.stop("demo")
    if "AIGUILLAGE_BROKER" in env and stop.asked < 2 and not hub.dead():
        _drain(env, stop, say)
    hub.stop_all()
    if durable is not None:
        durable.stop(last_checkpoint=True)
    say("stopped.")


def _drain(env: dict[str, str], stop: Stop, say: Callable[[str], None]) -> None:
    bootstrap = env["AIGUILLAGE_BROKER"].split("://", 1)[-1]
    group = env.get("AIGUILLAGE_WORKER_ID", "aiguillage")
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline and stop.asked < 2:
        try:
            left = asyncio.run(hub_lag(bootstrap, group, embedded=env.get("AIGUILLAGE_EMBEDDED_BROKER") == "1"))
        except Exception as exc:  # noqa: BLE001 - a broker that no longer answers ends the drain
            say(f"[yellow]drain: the broker does not answer ({type(exc).__name__}); stopping anyway[/]")
            return
        if left == 0:
            return
        time.sleep(0.5)
    say("[yellow]drain: some records were not processed in time; the next start takes them up[/]")


def _banner(say: Callable[[str], None], env: dict[str, str], tokens: dict[str, str], base: str, logs: Path,
            data_dir: Path, embedded: bool, staff: dict[str, str]) -> None:
    bearer = tokens.get("cpam", "<the CPAM token>")
    lines = "".join(f"  token       {src:<16}{tok}\n" for src, tok in tokens.items())
    if tokens:
        lines += f"              (partner tokens of this run; hashes in {env['AIGUILLAGE_TOKENS_FILE']})\n"
    lines += "".join(f"  staff       {role:<16}{tok}\n" for role, tok in staff.items())
    if staff:
        lines += (f"              (staff tokens of this run's development issuer {env['AIGUILLAGE_OIDC_ISSUER']},\n"
                  f"              valid 12 h: {', '.join(' '.join(h) for h in dev_issuer.ROLES_DEMO.values())})\n")
    if embedded:
        mode = (f"  broker      {env['AIGUILLAGE_BROKER']} (embedded, for a demo and for development)\n"
                f"  kept        in {data_dir}: the broker's journal and checkpoints, the gateway's outbox, the\n"
                f"              SQLite database; a 202 survives a crash, a restart on it finds the hub as it was\n"
                f"  production  an Apache Kafka: aiguillage kafka up, then AIGUILLAGE_BROKER=kafka://… aiguillage up\n")
    else:
        mode = f"  broker      {env['AIGUILLAGE_BROKER']}\n"
    say(f"\n[bold green]Aiguillage is up.[/]\n{mode}"
        f"  post        curl -X POST {base}/v1/signalements/cpam -H 'Authorization: Bearer {bearer}' "
        f"-H 'Content-Type: application/json' --data @{EXEMPLE}\n"
        f"{lines}"
        f"  dashboard   {base}/\n"
        f"  queues      curl -H 'Authorization: Bearer <a staff token>' {base}/v1/files\n"
        f"  database    {env['AIGUILLAGE_DATABASE_URL']}\n"
        f"  logs        {logs}/\n"
        f"Ctrl-C stops everything (a second Ctrl-C skips the drain).\n")
