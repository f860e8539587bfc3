"""Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it.

Only the holder runs the operator; other replicas are hot standbys that take over once the
holder has not renewed for a lease duration. Expiry is judged by when this replica last saw
the record change (its own clock), not by the holder's timestamps, so clock skew between
nodes does not matter.

The holder fences its own writes: `holds()` is true only for `renew_deadline` after the last
successful renewal was *sent*. A standby can see that renewal only after it was sent, and
waits a whole lease duration from then, so the holder stops writing at least
`lease_seconds - renew_deadline` before anyone may take over, even when it was frozen
(SIGSTOP, a paused VM) and wakes up with every timer overdue.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.aio import client

log = logging.getLogger("cijob.leader")


@dataclass(frozen=True)
class Timing:
    """client-go's defaults, and the deadline of each request to the API server."""

    lease_seconds: int = 15
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    request_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_seconds:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_seconds")
        if not 0 < self.request_seconds <= self.renew_deadline:
            raise ValueError("need 0 < request_seconds <= renew_deadline")


class Ended(enum.Enum):
    """Why `Elector.run` returned."""

    STOPPED = "stopped"  # asked to stop; the lease, if held, was released
    LOST = "lost"  # could not renew in time, or another replica holds it


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def take(lease: dict[str, Any] | None, me: str, expired: bool) -> dict[str, Any] | None:
    """The Lease spec that makes `me` the holder, or None when another holder is current."""
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


def release(lease: dict[str, Any] | None, me: str) -> dict[str, Any] | None:
    """The Lease spec that gives the lease up, as client-go's ReleaseOnCancel writes it (no
    holder, a 1 s duration), or None when `me` does not hold it."""
    spec = (lease or {}).get("spec") or {}
    if spec.get("holderIdentity") != me:
        return None
    now = _micro_now()
    return {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": now,
        "renewTime": now,
        "leaseTransitions": int(spec.get("leaseTransitions") or 0),
    }


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleeps `seconds` or until `stop` is set; whether it is. Spawns no task (kopf waits
    for, then cancels, every task created while it runs)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()


class Elector:
    """Campaigns for the Lease, runs `lead()` while holding it, returns when it is lost or
    when `lead()` has returned (then releases it).

    Give it an API client of its own: renewals must not queue behind the workers' requests."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        name: str,
        me: str,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = client.CoordinationV1Api(api_client)
        self.namespace, self.name, self.me, self.timing = namespace, name, me, timing
        self._clock = clock
        self._seen: tuple[Any, Any] | None = None
        self._seen_at = 0.0
        # When the last successful acquire or renew request was sent (never: -inf).
        self._renewed_at = -math.inf

    def holds(self) -> bool:
        """Whether this replica may write: it renewed the lease less than `renew_deadline` ago,
        counted from when the renewal was sent. Cheap and synchronous: the fence of every
        write."""
        return self._clock() - self._renewed_at < self.timing.renew_deadline

    def _left(self) -> float:
        """Seconds before `holds()` turns false."""
        return self.timing.renew_deadline - (self._clock() - self._renewed_at)

    async def _get(self) -> dict[str, Any] | None:
        r = await self.api.read_namespaced_lease_without_preload_content(
            self.name, self.namespace, _request_timeout=self.timing.request_seconds
        )
        body = await r.read()
        if r.status == 404:
            return None
        if r.status != 200:
            raise RuntimeError(f"read Lease {self.name}: HTTP {r.status}")
        lease: dict[str, Any] = json.loads(body)
        return lease

    async def _write(self, lease: dict[str, Any] | None, spec: dict[str, Any]) -> int:
        """Creates the Lease or replaces it; the HTTP status."""
        timeout = self.timing.request_seconds
        if lease is None:
            body: Any = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": spec,
            }
            r = await self.api.create_namespaced_lease_without_preload_content(
                self.namespace, body, _request_timeout=timeout
            )
        else:
            # The resourceVersion makes this a compare-and-swap: two candidates cannot both win.
            body = {**lease, "spec": spec}
            r = await self.api.replace_namespaced_lease_without_preload_content(
                self.name, self.namespace, body, _request_timeout=timeout
            )
        await r.read()
        if r.status in (200, 201, 409):
            return int(r.status)
        raise RuntimeError(f"write Lease {self.name}: HTTP {r.status}")

    async def _try(self) -> bool:
        """One attempt to acquire or renew; True when this replica holds the Lease after it."""
        lease = await self._get()
        spec = (lease or {}).get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"))
        if record != self._seen:
            self._seen, self._seen_at = record, self._clock()
        duration = int(spec.get("leaseDurationSeconds") or self.timing.lease_seconds)
        expired = self._clock() - self._seen_at > duration
        new_spec = take(lease, self.me, expired)
        if new_spec is None:
            self._renewed_at = -math.inf  # another replica holds it: stop writing now
            return False
        new_spec["leaseDurationSeconds"] = self.timing.lease_seconds
        sent = self._clock()
        if await self._write(lease, new_spec) == 409:
            return False
        self._renewed_at = sent
        self._seen, self._seen_at = (self.me, new_spec["renewTime"]), self._clock()
        return True

    async def _attempt(self, budget: float) -> bool:
        """`_try` within `budget` seconds; errors are logged and count as a failed attempt."""
        try:
            async with asyncio.timeout(max(budget, 0.0)):
                return await self._try()
        except Exception as e:  # the API server may be briefly away; keep campaigning
            log.warning("lease %s/%s: %s", self.namespace, self.name, e or type(e).__name__)
            return False

    async def _release(self) -> None:
        """Gives the lease up, so a standby takes over at its next try instead of waiting
        out the lease. Only while `holds()`: later, another replica may hold it already."""
        try:
            if not self.holds():
                return
            async with asyncio.timeout(self._left()):
                lease = await self._get()
                spec = release(lease, self.me)
                if lease is None or spec is None or await self._write(lease, spec) == 409:
                    return
            log.info("released the lease %s/%s", self.namespace, self.name)
        except Exception as e:
            log.warning(
                "could not release the lease %s/%s (a standby takes over once it expires): %s",
                self.namespace,
                self.name,
                e or type(e).__name__,
            )
        finally:
            self._renewed_at = -math.inf

    async def run(self, lead: Callable[[], Awaitable[None]], stop: asyncio.Event) -> Ended:
        """Leads while holding the lease. `lead()` is cancelled at once when the lease is lost;
        when it returns (or raises) the lease is released. A stop while standing by returns
        at once; while leading, `lead()` must watch `stop` itself and return."""
        while not await self._attempt(self.timing.renew_deadline):
            if await _sleep_unless(stop, self.timing.retry_period):
                return Ended.STOPPED
        log.info("acquired the lease %s/%s as %s", self.namespace, self.name, self.me)
        if stop.is_set():
            await self._release()
            return Ended.STOPPED
        leading = asyncio.ensure_future(lead())
        try:
            while True:
                await asyncio.wait([leading], timeout=self.timing.retry_period)
                if leading.done():
                    break
                if self.holds():
                    await self._attempt(self._left())
                if not self.holds():
                    # After a freeze, this is the first thing seen; the workers' overdue
                    # writes are refused by the fence meanwhile.
                    log.error(
                        "lost the lease %s/%s: not renewed within %s s; stopping",
                        self.namespace,
                        self.name,
                        self.timing.renew_deadline,
                    )
                    return Ended.LOST
        finally:
            if not leading.done():
                leading.cancel()
                await asyncio.gather(leading, return_exceptions=True)
        await self._release()
        leading.result()  # the lead's own failure, if it had one
        return Ended.STOPPED
