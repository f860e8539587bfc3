"""Waiting in line (docs/lifecycle.md, Queueing): the namespace limit and scheduling gates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cijob.lifecycle.limits import within_limits
from cijob.lifecycle.observe import Observation
from cijob.lifecycle.queueing import Line, arrival, pending_since
from cijob.lifecycle.status import build

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def job(name: str, created: str, **status: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    body = {"metadata": {"namespace": "ns", "name": name, "creationTimestamp": created}}
    return body, status


def jobs(*items: tuple[str, str, dict[str, Any]]) -> dict[tuple[str, str], Any]:
    return {("ns", n): job(n, c, **s) for n, c, s in items}


def test_first_come_first_served_by_creation_then_name() -> None:
    line = Line(limit=2)
    js = jobs(
        ("running", "2026-12-01T10:00:00Z", {"attempt": 1, "phase": "Running"}),
        ("b", "2026-12-01T10:00:05Z", {}),
        ("a", "2026-12-01T10:00:05Z", {}),
        ("early", "2026-12-01T10:00:01Z", {}),
    )
    assert sorted(js, key=lambda k: arrival(js[k][0]))[1:] == [
        ("ns", "early"),
        ("ns", "a"),
        ("ns", "b"),
    ]
    assert not line.admit(("ns", "a"), js)  # "early" is ahead and there is one slot
    assert line.admit(("ns", "early"), js)
    # "early" holds its slot before its status says so: no second job gets it
    assert not line.admit(("ns", "a"), js)
    assert line.held == {("ns", "a")}


def test_a_freed_slot_wakes_the_first_held_job_only() -> None:
    line = Line(limit=1)
    js = jobs(
        ("one", "2026-12-01T10:00:00Z", {}),
        ("two", "2026-12-01T10:00:01Z", {}),
        ("three", "2026-12-01T10:00:02Z", {}),
    )
    assert line.admit(("ns", "one"), js)
    assert not line.admit(("ns", "three"), js) and not line.admit(("ns", "two"), js)
    assert line.next_up("ns", js) == []
    js[("ns", "one")] = (js[("ns", "one")][0], {"attempt": 1, "phase": "Succeeded"})
    line.release(("ns", "one"))
    assert line.next_up("ns", js) == [("ns", "two")]


def test_other_namespaces_and_finished_or_canceled_jobs_take_no_slot() -> None:
    line = Line(limit=1)
    js = jobs(("done", "2026-12-01T10:00:00Z", {"attempt": 1, "phase": "Failed"}))
    body, status = job("x", "2026-12-01T10:00:00Z")
    js[("ns", "canceled")] = ({**body, "spec": {"cancel": True}}, status)
    js[("ns", "me")] = job("me", "2026-12-01T10:00:09Z")
    assert line.admit(("ns", "me"), js)
    assert Line(limit=None).admit(("ns", "me"), {})


def test_a_retrying_job_keeps_its_slot() -> None:
    line = Line(limit=1)
    js = jobs(
        (
            "retrying",
            "2026-12-01T10:00:00Z",
            {"attempt": 1, "phase": "Pending", "reason": "Retrying"},
        ),
        ("new", "2026-12-01T10:00:01Z", {}),
    )
    assert not line.admit(("ns", "new"), js)


def gated_pod(gates: bool = True) -> dict[str, Any]:
    spec = {"schedulingGates": [{"name": "kueue.x-k8s.io/admission"}]} if gates else {}
    return {"metadata": {"creationTimestamp": "2026-12-01T10:00:00Z"}, "spec": spec, "status": {}}


def test_a_gated_pod_waits_with_no_clock_running() -> None:
    obs = Observation("Pending", "SchedulingGated", "Scheduling is blocked")
    # two hours after its creation, far past both its timeout and pendingTimeoutSeconds
    held = within_limits(gated_pod(), obs, 60, 1800, NOW, {})
    assert (held.phase, held.reason, held.recheck_after) == ("Pending", "SchedulingGated", None)
    assert "kueue.x-k8s.io/admission" in (held.message or "")
    assert "timeout starts when it runs" in (held.message or "")


def test_pending_timeout_counts_from_the_gates_removal() -> None:
    gated_status = {"phase": "Pending", "reason": "SchedulingGated"}
    assert pending_since(gated_pod(), gated_status, NOW) is None
    # the gates were just removed: the wait for a node starts now, not at the pod's creation
    assert pending_since(gated_pod(False), gated_status, NOW) == NOW
    obs = Observation("Pending", "Unschedulable", "0/1 nodes are available")
    assert not within_limits(gated_pod(False), obs, 60, 1800, NOW, gated_status).terminal
    # the status written then starts a new Waiting condition, which later reconciles count from
    written = build(gated_status | {"conditions": []}, phase="Pending", generation=1, now=NOW,
                    reason="Unschedulable", message="0/1", waiting=True)  # fmt: skip
    later = NOW + timedelta(seconds=1801)
    assert pending_since(gated_pod(False), written, later) == NOW
    assert within_limits(gated_pod(False), obs, 60, 1800, later, written).reason == "PendingTimeout"


def test_an_ungated_pod_never_gated_counts_from_its_creation() -> None:
    obs = Observation("Pending", "Unschedulable", "no node")
    failed = within_limits(gated_pod(False), obs, 60, 1800, NOW, {"phase": "Pending"})
    assert failed.reason == "PendingTimeout"


def test_queue_name_becomes_kueues_label_on_every_attempts_pod() -> None:
    from unit.test_render_pod import job_spec, render

    for attempt in (1, 2):
        labels = render(job_spec(queueName="team-a"), attempt=attempt)["metadata"]["labels"]
        assert labels["kueue.x-k8s.io/queue-name"] == "team-a"
        assert labels["cijob.dev/attempt"] == str(attempt)
    assert "kueue.x-k8s.io/queue-name" not in render(job_spec())["metadata"]["labels"]
