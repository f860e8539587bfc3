"""maxRunningJobsPerNamespace through the control loop, with the API faked at `Kube`."""

from __future__ import annotations

import copy
from typing import Any

from unit.test_reconcile_paths import JOB_UID, Harness, _terminated


def _job(name: str, created: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "cijob.dev/v1alpha1",
        "kind": "CiJob",
        "metadata": {
            "namespace": "ns", "name": name, "uid": uid, "generation": 1,
            "creationTimestamp": created,
        },
        "spec": {"image": "alpine:3.20", "script": ["true"]},
    }  # fmt: skip


def _run_one(h: Harness) -> list[tuple[str, ...]]:
    h.apply()
    h.pod_is("j-1", phase="Running", startTime="2026-12-01T10:00:00Z")
    h.pod_is("j-1", **_terminated(0))
    return h.kube.calls


def test_a_job_the_limit_does_not_hold_costs_no_extra_write() -> None:
    assert _run_one(Harness(maxRunningJobsPerNamespace=1)) == _run_one(Harness())


def test_a_held_job_says_why_once_and_starts_when_the_slot_frees() -> None:
    h = Harness(maxRunningJobsPerNamespace=1)
    h.apply()  # "j", uid JOB_UID, takes the slot
    later = _job("k", "2099-01-01T00:00:00Z", "k-uid")
    h.run(lambda: h.r.job_event("ADDED", later))
    assert "k-1" not in h.kube.pods
    held = [c for c in h.kube.calls if c == ("status", "Pending", "NamespaceLimit")]
    assert len(held) == 1
    assert len(h.r.line.held) == 1
    # its own watch echo, and any number of later looks, write nothing more
    echo = copy.deepcopy(later) | {"status": h.kube.statuses[-1]}
    h.run(lambda: h.r.job_event("MODIFIED", echo), lambda: h.r.queue.add(("ns", "k")))
    assert h.kube.calls.count(("status", "Pending", "NamespaceLimit")) == 1
    h.pod_is("j-1", **_terminated(0))  # "j" ends: "k" is woken and starts
    assert "k-1" in h.kube.pods
    assert h.kube.pods["j-1"]["metadata"]["ownerReferences"][0]["uid"] == JOB_UID
    assert h.r.line.held == set()
