"""GET /healthz for the kubelet's probes and GET /metrics, served whether this replica leads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from cijob.metrics import CONTENT_TYPE, Metrics


async def serve_health(
    host: str, port: int, healthy: Callable[[], bool], metrics: Metrics | None = None
) -> web.AppRunner:
    """Starts the endpoint; 200 while `healthy()` says so, else 503. Returns its runner.
    With `metrics` (enabled), also GET /metrics in Prometheus' text format."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n") if healthy() else web.Response(status=503, text="down\n")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    if metrics is not None and metrics.enabled:

        async def scrape(_: web.Request) -> web.Response:
            return web.Response(body=metrics.expose(), headers={"Content-Type": CONTENT_TYPE})

        app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def task_alive(task: asyncio.Task[None] | None) -> bool:
    return task is None or not task.done()
