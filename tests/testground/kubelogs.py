"""The kubelet's containerLogs endpoint, as the simulated node serves it: the API server
proxies `kubectl logs` (pods/log) to it at the node's InternalIP and kubeletEndpoint port."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

# What a container's log holds, or why there is none: (HTTP status, body).
Lookup = Callable[[str, str, str], tuple[int, bytes]]
CHUNK = 64 * 1024


def _certificate(directory: Path) -> ssl.SSLContext:
    """A self-signed serving certificate: the test ground's API server is not told a kubelet
    CA (no --kubelet-certificate-authority), so it does not verify the node's, like kubeadm's
    default before serving certificates are rotated in."""
    key, crt = directory / "kubesim.key", directory / "kubesim.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=kubesim", "-addext", "subjectAltName=IP:127.0.0.1",
         "-days", "30", "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(crt, key)
    return context


class LogServer:
    """`GET /containerLogs/{namespace}/{pod}/{container}` with `limitBytes` (the parameter
    the operator's archive uses) and `follow` (the log is whole at once: a simulated container
    writes nothing after it has ended)."""

    def __init__(self, lookup: Lookup, host: str = "127.0.0.1") -> None:
        self.lookup, self.host = lookup, host
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.reads = 0

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        with tempfile.TemporaryDirectory(prefix="kubesim-tls-") as tmp:
            context = await asyncio.to_thread(_certificate, Path(tmp))
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        code, body = self.lookup(m["namespace"], m["pod"], m["container"])
        if code != 200:
            return web.Response(status=code, body=body, content_type="text/plain")
        self.reads += 1
        limit = request.query.get("limitBytes")
        if limit is not None and limit.isdigit():
            body = body[: int(limit)]
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for i in range(0, len(body), CHUNK):
            await response.write(body[i : i + CHUNK])
        await response.write_eof()
        return response
