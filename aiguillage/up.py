"""``aiguillage up``: everything on one machine, with no set-up."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from rich.console import Console

from aiguillage.broker import EmbeddedBroker
from aiguillage.config import Settings
from aiguillage.runtime import COMPONENTS, Hub, child_env, dev_secrets, wait_http
from aiguillage.topics import create_topics
from connectors.jetons import jetons_de_dev
from sinks import db

EXEMPLE = Path(__file__).resolve().parent.parent / "connectors" / "exemples" / "cpam.json"


def run_up(port: int, data_dir: Path, console: Console, demo: bool = False) -> int:
    env = child_env(AIGUILLAGE_HTTP_PORT=str(port))
    settings = Settings(_env_file=None)
    broker: EmbeddedBroker | None = None
    data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.broker:
        console.print("starting the embedded broker (Tansu, memory only)…")
        broker = EmbeddedBroker(log_file=data_dir / "tansu.log").start()
        env["AIGUILLAGE_BROKER"] = broker.url
        env["AIGUILLAGE_EMBEDDED_BROKER"] = "1"
        for var in dev_secrets(env):
            console.print(f"[yellow]{var} not set: using a throw-away key for this run[/]")
    bootstrap = env["AIGUILLAGE_BROKER"].split("://", 1)[-1]
    database_url = env.get("AIGUILLAGE_DATABASE_URL") or f"sqlite:///{(data_dir / 'aiguillage.db').resolve()}"
    env["AIGUILLAGE_DATABASE_URL"] = database_url
    jetons_dev: dict[str, str] = {}
    if not env.get("AIGUILLAGE_TOKENS_FILE"):
        env["AIGUILLAGE_TOKENS_FILE"] = str((data_dir / "tokens.json").resolve())
        jetons_dev = jetons_de_dev(Path(env["AIGUILLAGE_TOKENS_FILE"]))
    bearer = jetons_dev.get("cpam", "<the CPAM token>")
    hub = Hub(env, data_dir / "log")
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        asyncio.run(create_topics(bootstrap, int(env.get("AIGUILLAGE_PARTITIONS", "4"))))
        db.upgrade(database_url)
        for name in COMPONENTS:
            hub.start(name)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=hub.processes["gateway"])
        base = f"http://127.0.0.1:{port}"
        if demo:
            if "cpam" in jetons_dev:  # secrets by the environment, not the command line
                hub.env["AIGUILLAGE_DEMO_JETON_CPAM"] = jetons_dev["cpam"]
            hub.start("demo", "--passerelle", base)
        jetons_txt = "".join(f"  token       {src:<16}{tok}\n" for src, tok in jetons_dev.items())
        if jetons_dev:
            jetons_txt += f"              (throw-away partner tokens of this run; hashes in {env['AIGUILLAGE_TOKENS_FILE']})\n"
        console.print(
            f"\n[bold green]Aiguillage is up.[/]\n"
            f"  broker      {env['AIGUILLAGE_BROKER']}\n"
            f"  post        curl -X POST {base}/v1/signalements/cpam -H 'Authorization: Bearer {bearer}' "
            f"-H 'Content-Type: application/json' --data @{EXEMPLE}\n"
            f"{jetons_txt}"
            f"  dashboard   {base}/\n"
            f"  queues      {base}/v1/files\n"
            f"  database    {database_url}\n"
            f"  logs        {hub.log_dir}/\n"
            f"Ctrl-C stops everything.\n",
            soft_wrap=True,
        )
        while not stopping:
            dead = [n for n in hub.dead() if not (n == "demo" and hub.processes[n].returncode == 0)]
            if dead:
                console.print(f"[bold red]{', '.join(dead)} stopped unexpectedly; see {hub.log_dir}/[/]")
                return 1
            time.sleep(0.5)
        return 0
    finally:
        console.print("stopping…")
        hub.stop_all()
        if broker is not None:
            broker.stop()
        console.print("stopped.")
