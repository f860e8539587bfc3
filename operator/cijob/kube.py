"""Thin I/O: the few API calls the operator makes, over the async Kubernetes client."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes.aio import client

from cijob import api
from cijob.metrics import DISABLED, Metrics
from cijob.ownership import is_controlled_by
from cijob.render import names

Manifest = Mapping[str, Any]
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


class KubeError(Exception):
    """An API call that did not do what was asked: `status` is the HTTP code (0 when no
    answer came back), `message` the API server's own words."""

    def __init__(self, what: str, status: int, body: bytes | str) -> None:
        if isinstance(body, str):
            message = body
        else:
            try:
                message = json.loads(body).get("message", "")
            except ValueError:
                message = body[:200].decode(errors="replace")
        super().__init__(f"{what}: HTTP {status}: {message}" if status else f"{what}: {message}")
        self.status = status
        self.message = message


class NotLeader(KubeError):
    """A write refused here, before it was sent: this replica no longer holds the Lease."""

    def __init__(self, what: str) -> None:
        super().__init__(what, 0, "not sent: this replica does not hold the leader Lease")


@dataclass(frozen=True)
class NameTaken(Exception):
    """The name the job's object needs is held by an object that is not the job's."""

    kind: str
    holder: dict[str, Any]


def _json(what: str, status: int, body: bytes, ok: tuple[int, ...] = (200, 201)) -> Any:
    if status in ok:
        return json.loads(body) if body else None
    raise KubeError(what, status, body)


class Kube:
    """The API calls, each returning plain JSON data (no model objects on the hot path).

    `fence`, when given, is asked before every write: a replica that may have lost the
    leader Lease sends nothing (see leader.py). Every request sent is counted in `metrics`."""

    def __init__(
        self,
        api_client: client.ApiClient,
        fence: Callable[[], bool] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.client = api_client
        self.fence = fence
        self.metrics = metrics or DISABLED

    async def _request(
        self, method: str, path: str, body: Any = None, content_type: str = JSON
    ) -> tuple[int, bytes]:
        """One call through the client's own authentication and connection pool.

        The generated API methods validate every argument with pydantic and walk every body
        to serialise it; for the few calls here, with bodies that are plain JSON already, that
        was a fifth of the operator's CPU under load (see bench/README.md)."""
        if method != "GET" and self.fence is not None and not self.fence():
            raise NotLeader(f"{method} {path}")
        method, url, headers, _, _ = await self.client.param_serialize(
            method,
            path,
            header_params={"Content-Type": content_type, "Accept": JSON},
            auth_settings=["BearerToken"],
        )
        try:
            response = await self.client.call_api(
                method, url, headers, body, _preload_content=False
            )
            data = await response.read()  # type: ignore[no-untyped-call]
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.metrics.api_request(method, path, 0)
            raise KubeError(f"{method} {path}", 0, f"no answer: {exc!r}") from None
        self.metrics.api_request(method, path, response.status)
        return response.status, data

    async def create_pod(self, namespace: str, pod: Manifest) -> tuple[bool, dict[str, Any] | None]:
        """(True, the pod) when created; (False, the pod holding the name) on a conflict,
        whoever's it is (None if it went meanwhile): the caller checks whose it is."""
        name = pod["metadata"]["name"]
        status, body = await self._request("POST", _pods(namespace), dict(pod))
        if status == 409:
            return False, await self.get_pod(namespace, name)
        result: dict[str, Any] = _json(f"create pod {name}", status, body)
        return True, result

    async def _read(self, what: str, path: str) -> dict[str, Any] | None:
        """One object, or None when the API server has none at `path`."""
        status, body = await self._request("GET", path)
        if status == 404:
            return None
        result: dict[str, Any] = _json(f"read {what}", status, body)
        return result

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._read(f"pod {name}", f"{_pods(namespace)}/{name}")

    async def stop_pod(
        self, namespace: str, name: str, uid: str, annotations: Mapping[str, str]
    ) -> None:
        """Ends a started pod without deleting it: the kubelet ends a pod whose
        activeDeadlineSeconds has passed (phase Failed, DeadlineExceeded) and keeps its logs.
        The uid in the patch makes it fail on any other pod of the same name."""
        patch = {
            "metadata": {"uid": uid, "annotations": dict(annotations)},
            "spec": {"activeDeadlineSeconds": 1},
        }
        status, body = await self._request(
            "PATCH", f"{_pods(namespace)}/{name}", patch, MERGE_PATCH
        )
        _json(f"stop pod {name}", status, body, ok=(200, 404, 409))

    async def release_pod(self, namespace: str, name: str, uid: str) -> None:
        """Removes the tracking finalizer, and only it, from the pod with this uid: a strategic
        merge patch deletes the one entry, whatever other finalizers the pod carries."""
        patch = {
            "metadata": {
                "uid": uid,
                "$deleteFromPrimitiveList/finalizers": [names.TRACKING_FINALIZER],
            }
        }
        status, body = await self._request(
            "PATCH", f"{_pods(namespace)}/{name}", patch, STRATEGIC_PATCH
        )
        _json(f"release pod {name}", status, body, ok=(200, 404, 409))

    async def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        """Deletes the pod with this uid only (a precondition), never another of its name."""
        options = {"preconditions": {"uid": uid}}
        status, body = await self._request("DELETE", f"{_pods(namespace)}/{name}", options)
        _json(f"delete pod {name}", status, body, ok=(200, 202, 404, 409))

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._read(f"CiJob {name}", f"{_cijobs(namespace)}/{name}")

    async def patch_status(self, namespace: str, name: str, uid: str, status: Manifest) -> None:
        code, body = await self._request(
            "PATCH",
            f"{_cijobs(namespace)}/{name}/status",
            # The uid: a CiJob re-created under the same name is not this job.
            {"metadata": {"uid": uid}, "status": dict(status)},
            MERGE_PATCH,
        )
        # A job deleted meanwhile has no status left to write.
        _json(f"patch status of {name}", code, body, ok=(200, 404, 409))

    async def create_event(self, namespace: str, event: Manifest) -> None:
        status, body = await self._request("POST", f"/api/v1/namespaces/{namespace}/events", event)
        _json(f"create event {event['reason']}", status, body)

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        options = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
        status, body = await self._request("DELETE", f"{_cijobs(namespace)}/{name}", options)
        _json(f"delete CiJob {name}", status, body, ok=(200, 202, 404, 409))

    async def apply_secret(self, namespace: str, secret: Manifest, owner_uid: str) -> None:
        """Creates the Secret, or replaces the data of the one this job made before; raises
        NameTaken when a Secret of that name is not the job's."""
        name = secret["metadata"]["name"]
        status, body = await self._request("POST", _secrets(namespace), dict(secret))
        if status != 409:
            _json(f"create Secret {name}", status, body)
            return
        status, body = await self._request("GET", f"{_secrets(namespace)}/{name}")
        if status == 404:
            raise KubeError(f"create Secret {name}", 409, "deleted while being replaced")
        existing = _json(f"read Secret {name}", status, body)
        if not is_controlled_by(existing, owner_uid):
            meta = existing.get("metadata") or {}
            raise NameTaken("Secret", {"metadata": meta})
        uid = existing["metadata"]["uid"]
        status, body = await self._request(
            "PATCH",
            f"{_secrets(namespace)}/{name}",
            {"metadata": {"uid": uid}, "data": secret["data"]},
            MERGE_PATCH,
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

    async def list_uids(self, path: str, label_selector: str | None = None) -> set[str]:
        """The uids of every object at a collection `path`, page by page, metadata only."""
        uids: set[str] = set()
        token = ""
        while True:
            query = "limit=500" + (f"&continue={token}" if token else "")
            if label_selector:
                query += f"&labelSelector={label_selector}"
            status, body = await self._request("GET", f"{path}?{query}")
            page = _json(f"list {path}", status, body)
            uids.update(item["metadata"]["uid"] for item in page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return uids


def _pods(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def _secrets(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/secrets"


def _cijobs(namespace: str) -> str:
    return f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{api.PLURAL}"
