"""Leader election: the Lease bodies, and the fence `holds()` against a fake clock and API."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from typing import Any

import pytest

from cijob.leader import Elector, Ended, Timing, release, take

ME, OTHER = "node-a-1", "node-b-2"


def lease(holder: str | None, transitions: int = 0, duration: int = 15) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "leaseDurationSeconds": duration,
        "acquireTime": "2026-01-01T00:00:00.000000Z",
        "renewTime": "2026-01-01T00:00:05.000000Z",
        "leaseTransitions": transitions,
    }
    if holder is not None:
        spec["holderIdentity"] = holder
    return {"metadata": {"name": "l", "resourceVersion": "7"}, "spec": spec}


def test_take_a_missing_lease() -> None:
    spec = take(None, ME, expired=False)
    assert spec is not None
    assert spec["holderIdentity"] == ME and spec["leaseTransitions"] == 0
    assert spec["acquireTime"] == spec["renewTime"]


def test_take_refuses_a_current_holder_and_takes_an_expired_one() -> None:
    assert take(lease(OTHER, 3), ME, expired=False) is None
    spec = take(lease(OTHER, 3), ME, expired=True)
    assert spec is not None and spec["holderIdentity"] == ME and spec["leaseTransitions"] == 4


def test_renewing_keeps_the_acquire_time() -> None:
    spec = take(lease(ME, 2), ME, expired=False)
    assert spec is not None
    assert spec["acquireTime"] == "2026-01-01T00:00:00.000000Z"
    assert spec["renewTime"] != "2026-01-01T00:00:05.000000Z"
    assert spec["leaseTransitions"] == 2


def test_a_released_lease_is_free_at_once() -> None:
    spec = release(lease(ME, 2), ME)
    assert spec is not None
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 2
    # A standby takes it without waiting for it to expire.
    taken = take({"spec": spec}, OTHER, expired=False)
    assert taken is not None and taken["holderIdentity"] == OTHER


def test_only_the_holder_releases() -> None:
    assert release(lease(OTHER), ME) is None
    assert release(None, ME) is None


@pytest.mark.parametrize(
    "kw",
    [
        {"renew_deadline": 15.0},  # not shorter than the lease
        {"retry_period": 10.0},  # not shorter than the renew deadline
        {"request_seconds": 11.0},  # a request may outlive the renew deadline
        {"request_seconds": 0.0},
    ],
)
def test_timing_is_checked(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Timing(**kw)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Response:
    def __init__(self, status: int, body: Any = None) -> None:
        self.status = status
        self._body = json.dumps(body).encode() if body is not None else b"{}"

    async def read(self) -> bytes:
        return self._body


class FakeLeases:
    """The three Lease calls the Elector makes, on one stored Lease with resourceVersions;
    `delay` seconds of the fake clock pass while a write is in flight."""

    def __init__(self, clock: Clock, stored: dict[str, Any] | None = None) -> None:
        self.clock, self.stored, self.delay = clock, stored, 0.0
        self.writes: list[dict[str, Any]] = []
        self.timeouts: list[float] = []

    async def read_namespaced_lease_without_preload_content(
        self, name: str, namespace: str, _request_timeout: float
    ) -> Response:
        self.timeouts.append(_request_timeout)
        return Response(404) if self.stored is None else Response(200, self.stored)

    def _store(self, body: dict[str, Any]) -> Response:
        if self.delay:
            self.clock.now += self.delay
        self.writes.append(copy.deepcopy(body))
        version = int((self.stored or {}).get("metadata", {}).get("resourceVersion", "0"))
        self.stored = {
            **body,
            "metadata": {**body["metadata"], "resourceVersion": str(version + 1)},
        }
        return Response(200, self.stored)

    async def create_namespaced_lease_without_preload_content(
        self, namespace: str, body: dict[str, Any], _request_timeout: float
    ) -> Response:
        self.timeouts.append(_request_timeout)
        return Response(409) if self.stored is not None else self._store(body)

    async def replace_namespaced_lease_without_preload_content(
        self, name: str, namespace: str, body: dict[str, Any], _request_timeout: float
    ) -> Response:
        self.timeouts.append(_request_timeout)
        assert self.stored is not None
        if body["metadata"]["resourceVersion"] != self.stored["metadata"]["resourceVersion"]:
            return Response(409)
        return self._store(body)


def elector(
    clock: Clock, stored: dict[str, Any] | None = None, timing: Timing | None = None
) -> tuple[Elector, FakeLeases]:
    e = Elector(None, "ns", "l", ME, timing=timing or Timing(), clock=clock)  # type: ignore[arg-type]
    fake = FakeLeases(clock, stored)
    e.api = fake  # type: ignore[assignment]
    return e, fake


def test_holds_nothing_before_acquiring() -> None:
    e, _ = elector(Clock())
    assert not e.holds()


def test_holds_for_the_renew_deadline_after_the_renewal_was_sent() -> None:
    clock = Clock()
    e, fake = elector(clock)
    fake.delay = 3.0  # the response comes 3 s after the request left
    assert asyncio.run(e._try())
    assert fake.writes[0]["spec"]["holderIdentity"] == ME
    assert fake.writes[0]["spec"]["leaseDurationSeconds"] == 15
    clock.now = 1000.0 + 9.999
    assert e.holds()
    clock.now = 1000.0 + 10.0
    assert not e.holds()


def test_a_renewal_answered_after_the_deadline_does_not_extend_the_fence() -> None:
    """A process frozen while its renewal was in flight wakes up past the deadline: the
    renewal succeeded, but counts from when it was sent, so the fence is already shut."""
    clock = Clock()
    e, fake = elector(clock)
    fake.delay = 12.0
    assert asyncio.run(e._try())
    assert not e.holds()


def test_every_lease_request_has_a_deadline() -> None:
    e, fake = elector(Clock(), timing=Timing(request_seconds=3.0))
    asyncio.run(e._try())
    assert fake.timeouts == [3.0, 3.0]


def test_seeing_another_holder_shuts_the_fence_at_once() -> None:
    clock = Clock()
    e, fake = elector(clock)
    assert asyncio.run(e._try()) and e.holds()
    assert fake.stored is not None
    fake.stored["spec"]["holderIdentity"] = OTHER  # taken over (we were frozen, say)
    assert not asyncio.run(e._try())
    assert not e.holds()


def test_a_standby_waits_for_the_holder_to_expire() -> None:
    clock = Clock()
    e, fake = elector(clock, lease(OTHER))
    assert not asyncio.run(e._try())
    clock.now += 15.0
    assert not asyncio.run(e._try())  # not yet *more* than a lease duration
    clock.now += 0.5
    assert asyncio.run(e._try()) and e.holds()
    assert fake.writes[-1]["spec"]["holderIdentity"] == ME


FAST = Timing(lease_seconds=1, renew_deadline=0.5, retry_period=0.01, request_seconds=0.2)


class Offset(Clock):
    """The real monotonic clock, plus a jump the test makes (a thawed process's view)."""

    def __init__(self) -> None:
        super().__init__()
        self.jump = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.jump


def test_run_stops_leading_when_the_deadline_passes() -> None:
    clock = Offset()
    e, fake = elector(clock, timing=FAST)
    cancelled = []

    async def lead() -> None:
        try:
            await asyncio.sleep(0.05)
            clock.jump = 60.0  # frozen for a minute, then thawed
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(e.holds())
            raise

    ended = asyncio.run(e.run(lead, asyncio.Event()))
    assert ended is Ended.LOST
    assert cancelled == [False]  # lead was cancelled, and the fence was shut before
    assert all(w["spec"]["holderIdentity"] == ME for w in fake.writes)  # no release


def test_run_releases_the_lease_when_lead_returns() -> None:
    clock = Offset()
    e, fake = elector(clock, timing=FAST)

    async def lead() -> None:
        await asyncio.sleep(0.05)

    assert asyncio.run(e.run(lead, asyncio.Event())) is Ended.STOPPED
    assert fake.stored is not None
    assert fake.stored["spec"]["holderIdentity"] == ""
    assert fake.stored["spec"]["leaseDurationSeconds"] == 1
    assert not e.holds()


def test_run_releases_then_raises_when_lead_fails() -> None:
    clock = Offset()
    e, fake = elector(clock, timing=FAST)

    async def lead() -> None:
        raise RuntimeError("kopf failed")

    with pytest.raises(RuntimeError, match="kopf failed"):
        asyncio.run(e.run(lead, asyncio.Event()))
    assert fake.stored is not None and fake.stored["spec"]["holderIdentity"] == ""


def test_a_stop_while_standing_by_returns_without_writing() -> None:
    clock = Offset()
    e, fake = elector(clock, lease(OTHER, duration=3600), timing=FAST)

    async def main() -> Ended:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stop.set)
        return await e.run(lead_never, stop)

    async def lead_never() -> None:
        raise AssertionError("a standby does not lead")

    assert asyncio.run(main()) is Ended.STOPPED
    assert fake.writes == []
