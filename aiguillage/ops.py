"""What an operator asks a process: ``/metrics``, ``/healthz`` (alive) and ``/readyz`` (its
dependencies answer), for the processes that are not the gateway (the worker, the sinks), on
``AIGUILLAGE_METRICS_PORT``. The gateway serves the same three itself, with the same checks.

``/readyz`` answers 503 naming each dependency that does not answer (the broker, the database
the process writes, the Schema Registry it needs), and 200 once they all do again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from aiokafka import AIOKafkaClient

from aiguillage import metrics

log = logging.getLogger(__name__)
Check = Callable[[], Awaitable[None]]  # raises (any exception) when the dependency does not answer
TIMEOUT = 3.0


def broker(bootstrap: str, **client: Any) -> Check:
    async def check() -> None:
        c = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(TIMEOUT * 1000), **client)
        try:
            await c.bootstrap()
        finally:
            await c.close()
    return check


def database(engine: sa.Engine) -> Check:
    def select_one() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    async def check() -> None:
        await asyncio.to_thread(select_one)
    return check


def registry(url: str) -> Check:
    async def check() -> None:
        import httpx

        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            (await client.get(url.rstrip("/") + "/subjects")).raise_for_status()
    return check


async def pret(checks: dict[str, Check]) -> tuple[int, dict[str, Any]]:
    """The readiness answer: 200, or 503 with what each failing dependency said."""
    async def one(name: str, check: Check) -> tuple[str, str | None]:
        try:
            await asyncio.wait_for(check(), TIMEOUT)
            return name, None
        except Exception as exc:  # noqa: BLE001 - whatever it is, that dependency is not ready
            return name, f"{type(exc).__name__}: {exc}"[:200]

    results = await asyncio.gather(*(one(n, c) for n, c in checks.items()))
    failing = {n: why for n, why in results if why is not None}
    if failing:
        return 503, {"status": "not-ready", "failing": failing}
    return 200, {"status": "ready", "checked": sorted(checks)}


async def mesurer_lag(bootstrap: str, embedded: bool, worker_id: str, interval: float, **client: Any) -> None:
    """``aiguillage_consumer_lag`` of every hub group, every ``interval`` seconds, until cancelled."""
    from aiguillage import lag

    while True:
        try:
            await lag.publier(bootstrap, embedded, worker_id, **client)
        except Exception as exc:  # noqa: BLE001 - the lag is a reading, not a duty
            log.warning("consumer lag not read: %s", type(exc).__name__)
        await asyncio.sleep(interval)


async def serve(port: int, checks: dict[str, Check], host: str = "127.0.0.1") -> web.AppRunner:
    """Start the three endpoints in this event loop; the runner stops them (``await runner.cleanup()``)."""
    async def metrics_view(_: web.Request) -> web.Response:
        body, content_type = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        status, body = await pret(checks)
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("metrics, health and readiness on http://%s:%d/", host, port)
    return runner
