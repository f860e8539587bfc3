"""GET /healthz for the kubelet's probes, served whether this replica leads or stands by."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web


async def serve_health(host: str, port: int, healthy: Callable[[], bool]) -> web.AppRunner:
    """Starts the endpoint; 200 while `healthy()` says so, else 503. Returns its runner."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n") if healthy() else web.Response(status=503, text="down\n")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def task_alive(task: asyncio.Task[None] | None) -> bool:
    return task is None or not task.done()
