"""Load generation and watch-based timing: what each benchmark phase measures."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cijob.config import OperatorConfig
from cijob.job import job_from_body
from cijob.render.pod import get_pod
from testground.kubeapi import Api

Json = dict[str, Any]
CIJOBS = "/apis/cijob.dev/v1alpha1/namespaces/{ns}/cijobs"
PODS = "/api/v1/namespaces/{ns}/pods"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"


def cijob(name: str) -> Json:
    return {
        "apiVersion": "cijob.dev/v1alpha1",
        "kind": "CiJob",
        "metadata": {"name": name},
        "spec": {"image": "alpine:3.20", "script": ["true"]},
    }


def batch_job(name: str) -> Json:
    """The same one-container work as a CiJob, as a batch/v1 Job."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "build", "image": "alpine:3.20", "command": ["sh", "-c", "true"]}
                    ],
                }
            },
        },
    }


CEILING_LABEL = "bench.cijob.dev/ceiling"


def bare_pod(name: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {CEILING_LABEL: "true"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "build", "image": "alpine:3.20", "command": ["sh", "-c", "true"]}
            ],
        },
    }


def rendered_pod(name: str, namespace: str) -> Json:
    """The pod the operator renders for `cijob(name)`, as a bare pod: without its owner
    reference (the garbage collector would delete it) and with the ceiling's label."""
    job = cijob(name)
    job["metadata"].update(namespace=namespace, uid="bench")
    pod = dict(get_pod(job_from_body(job), 1, OperatorConfig()))
    pod["metadata"] = {
        "name": name,
        "labels": {CEILING_LABEL: "true"},
        "annotations": pod["metadata"].get("annotations", {}),
    }
    return pod


@dataclass
class Times:
    """Client-side times (time.monotonic) at which each object first met a condition."""

    seen: dict[str, float] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


async def watch(
    api: Api,
    path: str,
    times: Times,
    key: Callable[[Json], str | None],
    done: Callable[[Json], bool],
    params: dict[str, str] | None = None,
) -> None:
    """Records when each object is first seen and first done; runs until cancelled."""
    _, listing = await api.request("GET", path, params={**(params or {}), "limit": "1"})
    rv = listing["metadata"]["resourceVersion"]
    while True:
        query = {
            **(params or {}),
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        async for event in api.watch(path, query):
            obj = event["object"]
            rv = obj["metadata"].get("resourceVersion", rv)
            if event["type"] in ("BOOKMARK", "ERROR", "DELETED"):
                continue
            k = key(obj)
            if k is None:
                continue
            now = time.monotonic()
            times.seen.setdefault(k, now)
            if k not in times.done and done(obj):
                times.done[k] = now
            times.changed.set()


def name_of(obj: Json) -> str:
    name: str = obj["metadata"]["name"]
    return name


def label_of(label: str) -> Callable[[Json], str | None]:
    def key(obj: Json) -> str | None:
        value: str | None = (obj["metadata"].get("labels") or {}).get(label)
        return value

    return key


def status_phase(phase: str) -> Callable[[Json], bool]:
    return lambda obj: (obj.get("status") or {}).get("phase") == phase


def job_complete(obj: Json) -> bool:
    return any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


async def create_all(
    api: Api,
    path: str,
    bodies: Iterable[Json],
    concurrency: int = 32,
    sent: dict[str, float] | None = None,
) -> None:
    """Creates every object as fast as `concurrency` connections allow."""
    queue: asyncio.Queue[Json] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            if sent is not None:
                sent[body["metadata"]["name"]] = time.monotonic()
            await api.request("POST", path, body)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def paced(
    api: Api, path: str, bodies: list[Json], rate: float, sent: dict[str, float]
) -> None:
    """Creates one object every 1/rate seconds (an open-loop offered load)."""
    start = time.monotonic()
    tasks = []
    for i, body in enumerate(bodies):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[body["metadata"]["name"]] = time.monotonic()
        tasks.append(asyncio.create_task(api.request("POST", path, body)))
    await asyncio.gather(*tasks)


async def until(times: Times, count: int, which: str, timeout: float) -> float:
    """Waits until `count` objects are seen/done; returns the monotonic time it happened."""
    deadline = time.monotonic() + timeout
    while True:
        got = getattr(times, which)
        if len(got) >= count:
            return float(max(got.values()))
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"only {len(got)} of {count} {which} after {timeout} s")
        times.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(times.changed.wait(), min(left, 1.0))


async def with_watches(watches: Sequence[Awaitable[None]], body: Awaitable[Any]) -> Any:
    tasks = [asyncio.ensure_future(w) for w in watches]
    try:
        await asyncio.sleep(0.3)  # the watches are open before the load starts
        return await body
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# The simulator's errors that it recovers from by itself (it watches again, renews again); any
# other is a pod it gave up on, or the simulator stopped: a job that can no longer finish.
RECOVERED = ("watch ", "heartbeat: ")


def gave_up(errors: Sequence[str]) -> list[str]:
    """The kubelet simulator's errors that leave a pod unfinished for good."""
    return [e for e in errors if not e.startswith(RECOVERED)]


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan")}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": ordered[-1]}
