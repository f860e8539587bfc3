"""Thin I/O: the few API calls the operator makes, over the async Kubernetes client."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from kubernetes.aio import client

from cijob import api

Manifest = Mapping[str, Any]
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


async def _json(what: str, response: Any, ok: tuple[int, ...] = (200, 201)) -> Any:
    body = await response.read()
    if response.status in ok:
        return json.loads(body) if body else None
    raise KubeError(what, response.status, body)


class Kube:
    """The API calls, each returning plain JSON data (no model objects on the hot path)."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    async def create_pod(self, namespace: str, pod: Manifest) -> dict[str, Any] | None:
        """The created pod, or None when a pod of that name already exists."""
        body: Any = dict(pod)  # the client takes plain dicts as well as its models
        r = await self.core.create_namespaced_pod_without_preload_content(namespace, body)
        if r.status == 409:
            await r.read()
            return None
        result: dict[str, Any] = await _json(f"create pod {pod['metadata']['name']}", r)
        return result

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        r = await self.core.read_namespaced_pod_without_preload_content(name, namespace)
        if r.status == 404:
            await r.read()
            return None
        result: dict[str, Any] = await _json(f"read pod {name}", r)
        return result

    async def delete_pod(self, namespace: str, name: str) -> None:
        r = await self.core.delete_namespaced_pod_without_preload_content(name, namespace)
        await _json(f"delete pod {name}", r, ok=(200, 202, 404))

    async def patch_status(self, namespace: str, name: str, status: Manifest) -> None:
        r = await self.custom.patch_namespaced_custom_object_status_without_preload_content(
            api.GROUP,
            api.VERSION,
            namespace,
            api.PLURAL,
            name,
            {"status": dict(status)},
            _content_type=MERGE_PATCH,
        )
        # A job deleted meanwhile has no status left to write.
        await _json(f"patch status of {name}", r, ok=(200, 404))

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        options: Any = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
        r = await self.custom.delete_namespaced_custom_object_without_preload_content(
            api.GROUP, api.VERSION, namespace, api.PLURAL, name, body=options
        )
        await _json(f"delete CiJob {name}", r, ok=(200, 202, 404, 409))

    async def apply_secret(self, namespace: str, secret: Manifest) -> None:
        """Creates the Secret, or replaces the data of the one a previous run made."""
        name = secret["metadata"]["name"]
        body: Any = dict(secret)
        r = await self.core.create_namespaced_secret_without_preload_content(namespace, body)
        if r.status != 409:
            await _json(f"create Secret {name}", r)
            return
        await r.read()
        r = await self.core.patch_namespaced_secret_without_preload_content(
            name, namespace, {"data": secret["data"]}, _content_type=MERGE_PATCH
        )
        await _json(f"update Secret {name}", r)

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The decoded data of a Secret, or None when it does not exist."""
        r = await self.core.read_namespaced_secret_without_preload_content(name, namespace)
        if r.status == 404:
            await r.read()
            return None
        body = await _json(f"read Secret {name}", r)
        data = body.get("data") or {}
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}

    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None:
        r = await self.core.read_namespaced_config_map_without_preload_content(name, namespace)
        if r.status == 404:
            await r.read()
            return None
        body = await _json(f"read ConfigMap {name}", r)
        return dict(body.get("data") or {})
