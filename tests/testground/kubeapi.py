"""A minimal asyncio Kubernetes REST client on raw JSON, for the simulator's hot path."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

Json = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach an apiserver, from a kubeconfig."""

    server: str
    ssl: ssl.SSLContext
    headers: Mapping[str, str]


def load_endpoint(kubeconfig: str | None = None, context: str | None = None) -> Endpoint:
    """Reads a kubeconfig with the official loader (certs, tokens, exec plugins)."""
    cfg = k8s_client.Configuration()
    k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context, client_configuration=cfg, persist_config=False
    )
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.ssl_ca_cert else None
    if ctx is None:
        ctx = ssl.create_default_context()
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    headers = {"Accept": "application/json"}
    token = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
    if token:
        headers["Authorization"] = token if token.startswith("Bearer ") else f"Bearer {token}"
    return Endpoint(server=cfg.host.rstrip("/"), ssl=ctx, headers=headers)


class ApiError(RuntimeError):
    """A request the apiserver refused, with its status code and Status message."""

    def __init__(self, method: str, path: str, code: int, body: str) -> None:
        try:
            message = json.loads(body).get("message", body)
        except ValueError:
            message = body
        super().__init__(f"{method} {path}: {code} {message}")
        self.code = code
        self.message = message


class Api:
    """One aiohttp session to one apiserver; create inside the event loop that uses it."""

    def __init__(self, endpoint: Endpoint, connections: int = 64) -> None:
        self.endpoint = endpoint
        self.session = aiohttp.ClientSession(
            base_url=endpoint.server,
            headers=dict(endpoint.headers),
            connector=aiohttp.TCPConnector(ssl=endpoint.ssl, limit=connections),
            timeout=aiohttp.ClientTimeout(total=60, sock_connect=10),
        )

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (),
    ) -> tuple[int, Json]:
        """Sends one request; returns (status, body) or raises ApiError unless 2xx or in `ok`."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else None
        async with self.session.request(
            method, path, data=data, headers=headers, params=params
        ) as resp:
            text = await resp.text()
            if resp.status < 300 or resp.status in ok:
                try:
                    return resp.status, json.loads(text) if text else {}
                except ValueError:
                    return resp.status, {}
            raise ApiError(method, path, resp.status, text)

    async def watch(self, path: str, params: Mapping[str, str]) -> AsyncIterator[Json]:
        """Yields watch events; ends when the server closes the stream."""
        query = {**params, "watch": "true"}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
        async with self.session.get(path, params=query, timeout=timeout) as resp:
            if resp.status >= 300:
                raise ApiError("WATCH", path, resp.status, await resp.text())
            buf = b""
            # Split lines by hand: one pod can exceed aiohttp's line-length limit.
            async for chunk in resp.content.iter_any():
                *lines, buf = (buf + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
