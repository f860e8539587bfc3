"""What the reconciler keeps in memory: only what an unfinished job still needs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from cijob.config import OperatorConfig
from cijob.kube import Kube
from cijob.reconcile import Reconciler
from cijob.render import names


def _reconciler() -> Reconciler:
    # No API call may happen: a Kube that is not one fails loudly if used.
    return Reconciler(cast(Kube, object()), OperatorConfig(), lambda *_: None, operator_env={})


def _pod(job: str, attempt: int = 1) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": names.pod_name(job, attempt),
            "labels": names.pod_labels(job, attempt),
            "uid": f"pod-{job}-{attempt}",
            "ownerReferences": [{"kind": "CiJob", "uid": "u1", "controller": True}],
        },
        "status": {"phase": "Succeeded"},
    }


def test_pods_of_jobs_it_does_not_follow_are_not_kept() -> None:
    # A finished job's pod, or a pod listed before its job at start-up: the job's own
    # reconcile reads it when it needs it.
    r = _reconciler()
    r.pod_event(None, _pod("done"))
    r.pod_event("MODIFIED", _pod("done"))
    assert r.cache.pods == {}
    assert r.cache.deleted_pods == {}


def test_pods_without_the_job_label_are_ignored() -> None:
    r = _reconciler()
    pod = _pod("x")
    pod["metadata"]["labels"] = {}
    r.pod_event("ADDED", pod)
    assert r.cache.pods == {}


class _Kube:
    """The calls a job with no credentials makes, answered as the API server would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def create_pod(self, namespace: str, pod: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        self.calls.append(("create pod", pod["metadata"]["name"]))
        return True, pod

    async def patch_status(
        self, namespace: str, name: str, uid: str, status: dict[str, Any]
    ) -> None:
        self.calls.append(("status", status["phase"]))

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        self.calls.append(("delete job", name))


def _job(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "j", "uid": "u1", "generation": 1},
        "spec": {"image": "alpine:3.20", "script": ["true"], **spec},
    }


def _at(seconds: float) -> str:
    """A time near now: the TTL counts from the pod's finishedAt."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _build_pod(phase: str, state: dict[str, Any]) -> dict[str, Any]:
    pod = _pod("j")
    pod["status"] = {
        "phase": phase,
        "startTime": _at(-2),
        "containerStatuses": [
            {
                "name": "build",
                "state": state,
                "image": "alpine:3.20",
                "imageID": "docker.io/library/alpine@sha256:" + "1" * 64,
                "ready": phase == "Running",
                "restartCount": 0,
            }
        ],
    }
    return pod


RUNNING = _build_pod("Running", {"running": {"startedAt": _at(-1)}})
SUCCEEDED = _build_pod(
    "Succeeded",
    {
        "terminated": {
            "exitCode": 0,
            "reason": "Completed",
            "startedAt": _at(-1),
            "finishedAt": _at(0),
        }
    },
)


def _run_job(job: dict[str, Any]) -> tuple[Reconciler, _Kube, dict[str, bool]]:
    kube = _Kube()
    r = Reconciler(cast(Kube, kube), OperatorConfig(), lambda *_: None, operator_env={})
    seen: dict[str, bool] = {}

    async def scenario() -> None:
        r.job_event("ADDED", job)
        await r.drain()
        r.pod_event("MODIFIED", RUNNING)
        await r.drain()
        seen["deadline timer while running"] = ("ns", "j") in r.timers
        r.pod_event("MODIFIED", SUCCEEDED)
        await r.drain()
        seen["ttl timer"] = ("ns", "j") in r.timers
        r.timers.clear()

    asyncio.run(scenario())
    return r, kube, seen


def test_a_finished_job_leaves_nothing_behind_though_it_had_a_deadline_timer() -> None:
    # The running job's deadline recheck once kept every finished job (body, pods, lock,
    # timer) in memory until its timeout passed: 165 KB a job in a burst of 3000.
    r, kube, seen = _run_job(_job())
    assert seen == {"deadline timer while running": True, "ttl timer": False}
    assert [c for c in kube.calls if c[0] == "status"] == [
        ("status", "Pending"),
        ("status", "Running"),
        ("status", "Succeeded"),
    ]
    c = r.cache
    assert (c.jobs, c.pods, list(r.timers), c.written, r.backoff.failures) == ({}, {}, [], {}, {})
    assert not r.queue.busy
    assert c.finished == {"u1"}


def test_a_finished_job_with_a_ttl_is_kept_only_for_its_ttl_timer() -> None:
    r, kube, seen = _run_job(_job(ttlSecondsAfterFinished=3600))
    assert list(r.cache.jobs) == [("ns", "j")]
    assert seen["ttl timer"]
    assert ("delete job", "j") not in kube.calls


def test_a_finished_job_with_a_zero_ttl_is_deleted_at_once_and_forgotten() -> None:
    r, kube, _ = _run_job(_job(ttlSecondsAfterFinished=0))
    assert ("delete job", "j") in kube.calls
    assert (r.cache.jobs, list(r.timers)) == ({}, [])


def test_events_that_arrive_while_the_job_waits_are_one_reconcile_of_the_newest() -> None:
    # Under load the pod can be Running and Succeeded before a worker looks: one status
    # write for both, as a Go controller's workqueue would make.
    kube = _Kube()
    r = Reconciler(cast(Kube, kube), OperatorConfig(), lambda *_: None, operator_env={})

    async def scenario() -> None:
        r.job_event("ADDED", _job())
        await r.drain()
        r.pod_event("MODIFIED", RUNNING)
        r.pod_event("MODIFIED", SUCCEEDED)
        await r.drain()

    asyncio.run(scenario())
    assert [c for c in kube.calls if c[0] == "status"] == [
        ("status", "Pending"),
        ("status", "Succeeded"),
    ]


class _Unreachable(_Kube):
    async def create_pod(self, namespace: str, pod: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        raise OSError("connection refused")


def test_a_failed_reconcile_is_retried_later_with_backoff() -> None:
    r = Reconciler(cast(Kube, _Unreachable()), OperatorConfig(), lambda *_: None, operator_env={})

    async def scenario() -> tuple[bool, int]:
        r.job_event("ADDED", _job())
        await r.drain()
        scheduled = ("ns", "j") in r.timers
        r.timers.clear()
        return scheduled, r.backoff.failures[("ns", "j")]

    assert asyncio.run(scenario()) == (True, 1)
    assert list(r.cache.jobs) == [("ns", "j")]
