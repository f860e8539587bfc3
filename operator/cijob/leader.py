"""Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it.

Only the holder runs the operator; other replicas are hot standbys that take over once the
holder has not renewed for a lease duration. Expiry is judged by when this replica last saw
the record change (its own clock), not by the holder's timestamps, so clock skew between
nodes does not matter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.aio import client

log = logging.getLogger("cijob.leader")


@dataclass(frozen=True)
class Timing:
    lease_seconds: int = 15
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def take(lease: dict[str, Any] | None, me: str, expired: bool) -> dict[str, Any] | None:
    """The Lease body that makes `me` the holder, or None when another holder is current."""
    spec = dict((lease or {}).get("spec") or {})
    holder = spec.get("holderIdentity")
    if holder and holder != me and not expired:
        return None
    now = _micro_now()
    if holder != me:
        spec["acquireTime"] = now
        spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
    spec["holderIdentity"] = me
    spec["renewTime"] = now
    return spec


class Elector:
    """Campaigns for the Lease, runs `lead()` while holding it, returns when it is lost."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        name: str,
        me: str,
        timing: Timing = Timing(),
    ) -> None:
        self.api = client.CoordinationV1Api(api_client)
        self.namespace, self.name, self.me, self.timing = namespace, name, me, timing
        self._seen: tuple[Any, Any] | None = None
        self._seen_at = 0.0

    async def _get(self) -> dict[str, Any] | None:
        r = await self.api.read_namespaced_lease_without_preload_content(self.name, self.namespace)
        body = await r.read()
        if r.status == 404:
            return None
        if r.status != 200:
            raise RuntimeError(f"read Lease {self.name}: HTTP {r.status}")
        lease: dict[str, Any] = json.loads(body)
        return lease

    async def _try(self) -> bool:
        """One attempt to acquire or renew; True when this replica holds the Lease after it."""
        lease = await self._get()
        spec = (lease or {}).get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"))
        if record != self._seen:
            self._seen, self._seen_at = record, time.monotonic()
        duration = int(spec.get("leaseDurationSeconds") or self.timing.lease_seconds)
        expired = time.monotonic() - self._seen_at > duration
        new_spec = take(lease, self.me, expired)
        if new_spec is None:
            return False
        new_spec["leaseDurationSeconds"] = self.timing.lease_seconds
        body: Any
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": new_spec,
            }
            r = await self.api.create_namespaced_lease_without_preload_content(self.namespace, body)
        else:
            # The resourceVersion makes this a compare-and-swap: two candidates cannot both win.
            body = {**lease, "spec": new_spec}
            r = await self.api.replace_namespaced_lease_without_preload_content(
                self.name, self.namespace, body
            )
        await r.read()
        if r.status in (200, 201):
            self._seen, self._seen_at = (self.me, new_spec["renewTime"]), time.monotonic()
            return True
        if r.status == 409:
            return False
        raise RuntimeError(f"write Lease {self.name}: HTTP {r.status}")

    async def _attempt(self) -> bool:
        try:
            return await self._try()
        except Exception as e:  # the API server may be briefly away; keep campaigning
            log.warning("lease %s/%s: %s", self.namespace, self.name, e)
            return False

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        while not await self._attempt():
            await asyncio.sleep(self.timing.retry_period)
        log.info("acquired the lease %s/%s as %s", self.namespace, self.name, self.me)
        leading = asyncio.ensure_future(lead())
        try:
            last_renewed = time.monotonic()
            while not leading.done():
                await asyncio.sleep(self.timing.retry_period)
                if await self._attempt():
                    last_renewed = time.monotonic()
                elif time.monotonic() - last_renewed > self.timing.renew_deadline:
                    log.error("lost the lease %s/%s", self.namespace, self.name)
                    return
        finally:
            leading.cancel()
