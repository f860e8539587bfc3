"""Thin I/O: the few API calls the operator makes, over the async Kubernetes client."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.aio import client

from cijob import api

Manifest = Mapping[str, Any]
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


class KubeError(Exception):
    """An API call the operator cannot carry on from (not a 404 or 409, which it expects)."""

    def __init__(self, what: str, status: int, body: bytes) -> None:
        try:
            message = json.loads(body).get("message", "")
        except ValueError:
            message = body[:200].decode(errors="replace")
        super().__init__(f"{what}: HTTP {status}: {message}")
        self.status = status


class NotLeader(Exception):
    """A write refused because this replica no longer holds the leader Lease."""


def _json(what: str, status: int, body: bytes, ok: tuple[int, ...] = (200, 201)) -> Any:
    if status in ok:
        return json.loads(body) if body else None
    raise KubeError(what, status, body)


class Kube:
    """The API calls, each returning plain JSON data (no model objects on the hot path)."""

    def __init__(
        self, api_client: client.ApiClient, fence: Callable[[], bool] | None = None
    ) -> None:
        self.client = api_client
        # Checked before every write: False once this replica may have lost the Lease.
        self.fence = fence

    async def _request(
        self, method: str, path: str, body: Any = None, content_type: str = JSON
    ) -> tuple[int, bytes]:
        """One call through the client's own authentication and connection pool.

        The generated API methods validate every argument with pydantic and walk every body
        to serialise it; for the few calls here, with bodies that are plain JSON already, that
        was a fifth of the operator's CPU under load (see bench/README.md)."""
        method, url, headers, _, _ = await self.client.param_serialize(
            method,
            path,
            header_params={"Content-Type": content_type, "Accept": JSON},
            auth_settings=["BearerToken"],
        )
        if method != "GET" and self.fence is not None and not self.fence():
            raise NotLeader(f"{method} {path}: this replica does not hold the leader Lease")
        response = await self.client.call_api(method, url, headers, body, _preload_content=False)
        return response.status, await response.read()  # type: ignore[no-untyped-call]

    async def create_pod(self, namespace: str, pod: Manifest) -> dict[str, Any] | None:
        """The created pod, or None when a pod of that name already exists."""
        status, body = await self._request("POST", _pods(namespace), dict(pod))
        if status == 409:
            return None
        result: dict[str, Any] = _json(f"create pod {pod['metadata']['name']}", status, body)
        return result

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        status, body = await self._request("GET", f"{_pods(namespace)}/{name}")
        if status == 404:
            return None
        result: dict[str, Any] = _json(f"read pod {name}", status, body)
        return result

    async def delete_pod(self, namespace: str, name: str) -> None:
        status, body = await self._request("DELETE", f"{_pods(namespace)}/{name}")
        _json(f"delete pod {name}", status, body, ok=(200, 202, 404))

    async def patch_status(self, namespace: str, name: str, status: Manifest) -> None:
        code, body = await self._request(
            "PATCH", f"{_cijobs(namespace)}/{name}/status", {"status": dict(status)}, MERGE_PATCH
        )
        # A job deleted meanwhile has no status left to write.
        _json(f"patch status of {name}", code, body, ok=(200, 404))

    async def create_event(self, namespace: str, event: Manifest) -> None:
        status, body = await self._request("POST", f"/api/v1/namespaces/{namespace}/events", event)
        _json(f"create event {event['reason']}", status, body)

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        options = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
        status, body = await self._request("DELETE", f"{_cijobs(namespace)}/{name}", options)
        _json(f"delete CiJob {name}", status, body, ok=(200, 202, 404, 409))

    async def apply_secret(self, namespace: str, secret: Manifest) -> None:
        """Creates the Secret, or replaces the data of the one a previous run made."""
        name = secret["metadata"]["name"]
        status, body = await self._request("POST", _secrets(namespace), dict(secret))
        if status != 409:
            _json(f"create Secret {name}", status, body)
            return
        status, body = await self._request(
            "PATCH", f"{_secrets(namespace)}/{name}", {"data": secret["data"]}, MERGE_PATCH
        )
        _json(f"update Secret {name}", status, body)

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The decoded data of a Secret, or None when it does not exist."""
        status, body = await self._request("GET", f"{_secrets(namespace)}/{name}")
        if status == 404:
            return None
        data = _json(f"read Secret {name}", status, body).get("data") or {}
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}

    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None:
        path = f"/api/v1/namespaces/{namespace}/configmaps/{name}"
        status, body = await self._request("GET", path)
        if status == 404:
            return None
        return dict(_json(f"read ConfigMap {name}", status, body).get("data") or {})


def _pods(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def _secrets(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/secrets"


def _cijobs(namespace: str) -> str:
    return f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{api.PLURAL}"
