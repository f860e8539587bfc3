"""The tracking finalizer's pure decisions (docs/lifecycle.md, "One pod per attempt")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cijob.lifecycle.observe import observe_pod
from cijob.render import names
from cijob.tracking import ENDED, Tracking, accounted, attempt_of, held, releasable

Json = dict[str, Any]
OWNER = [
    {
        "apiVersion": "cijob.dev/v1alpha1",
        "kind": "CiJob",
        "name": "j",
        "uid": "u",
        "controller": True,
    }
]
DISRUPTED = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def pod(attempt: int = 1, deleted: bool = True, **meta: Any) -> Json:
    m: Json = {
        "namespace": "ns",
        "name": f"j-{attempt}",
        "uid": f"p{attempt}",
        "labels": names.pod_labels("j", attempt),
        "ownerReferences": OWNER,
        "finalizers": [names.TRACKING_FINALIZER],
        **meta,
    }
    if deleted:
        m["deletionTimestamp"] = "2025-03-01T12:00:00Z"
    return {"metadata": m, "spec": {}, "status": {}}


def job(uid: str = "u", **meta: Any) -> Json:
    return {"metadata": {"name": "j", "uid": uid, **meta}}


@pytest.mark.parametrize(
    ("attempt", "status", "expected"),
    [
        (1, {}, False),  # the attempt is not in the status yet: a successor must record it
        (1, {"phase": "Running", "attempt": 1}, False),
        (2, {"phase": "Pending", "attempt": 1, "attempts": [{"attempt": 1}]}, False),
        (1, {"phase": "Pending", "attempt": 1, "attempts": [{"attempt": 1}]}, True),
        (1, {"phase": "Pending", "attempt": 2, "attempts": [{"attempt": 1}]}, True),
        (1, {"phase": "Succeeded", "attempt": 1}, True),
        (3, {"phase": "Canceled", "attempt": 2}, True),  # ended: nothing will record it
        (None, {"phase": "Running", "attempt": 1}, False),
        (1, ENDED, True),
    ],
)
def test_an_attempt_is_accounted_for_once_its_outcome_is_in_the_status(
    attempt: int | None, status: Json, expected: bool
) -> None:
    assert accounted(attempt, status) is expected


def test_a_pod_may_go_when_its_job_is_gone_going_or_has_its_outcome() -> None:
    running = {"phase": "Running", "attempt": 1}
    assert not releasable(pod(), job(), running)
    assert releasable(pod(), None, {})  # the CiJob is gone
    assert releasable(pod(), job("another"), running)  # a re-created one of the same name
    assert releasable(pod(), job(deletionTimestamp="2025-03-01T12:00:00Z"), running)
    assert releasable(pod(), job(), {"phase": "Failed", "attempt": 1})


def test_only_deleted_pods_of_a_cijob_with_the_finalizer_are_held() -> None:
    assert held(pod())
    assert not held(pod(deleted=False))
    assert not held(pod(finalizers=["example.com/other"]))
    assert not held(pod(ownerReferences=[]))
    other = [{**OWNER[0], "kind": "Job", "apiVersion": "batch/v1"}]
    assert not held(pod(ownerReferences=other))


def test_the_attempt_comes_from_the_label_else_the_name() -> None:
    assert attempt_of(pod(3)) == 3
    unlabelled = pod(4, labels={})
    assert attempt_of(unlabelled) == 4


def test_the_held_pods_are_kept_by_job_until_deleted_or_no_longer_held() -> None:
    t = Tracking()
    assert t.pod_seen("MODIFIED", pod(deleted=False)) is None
    assert t.pod_seen("MODIFIED", pod()) == ("ns", "j")
    assert ("ns", "j") in t
    assert t.pod_seen("DELETED", pod()) is None
    assert ("ns", "j") not in t


def _killed(code: int, phase: str = "Failed", reason: str = "Error", **status: Any) -> Json:
    p = pod()
    term = {"exitCode": code, "reason": reason, "finishedAt": "2025-03-01T12:00:00Z"}
    p["status"] = {
        "phase": phase,
        "startTime": "2025-03-01T11:59:00Z",
        "containerStatuses": [{"name": "build", "image": "a", "state": {"terminated": term}}],
        **status,
    }
    return p


@pytest.mark.parametrize(
    ("p", "reason"),
    [
        (_killed(143), "PodDeleted"),  # ended by the deletion's SIGTERM
        (_killed(137), "PodDeleted"),  # or its SIGKILL, past the grace period
        (_killed(1), "ScriptFailure"),  # it had failed by itself
        (_killed(0, "Succeeded", "Completed"), None),  # it had succeeded
        (_killed(137, reason="OOMKilled"), "OOMKilled"),
        (_killed(0, "Succeeded", "Completed", conditions=[DISRUPTED]), None),  # evicted late
        (_killed(143, conditions=[DISRUPTED]), "PodEvicted"),
    ],
)
def test_a_deleted_pod_seen_only_once_the_kubelet_ended_it(p: Json, reason: str | None) -> None:
    assert observe_pod(p, NOW, 60).reason == reason
