"""Queueing is visible (docs/lifecycle.md, Queueing): a pod held by a scheduling gate, Kueue's
queue label, and maxRunningJobsPerNamespace, on the real API server with the kubelet simulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from integration.conftest import OperatorFactory
from integration.support import CiJobs
from testground.gatewebhook import ADMISSION_GATE, QUEUE_LABEL, GateWebhook
from testground.kubesim import KubeSim
from testground.plans import Behaviour

pytestmark = pytest.mark.cluster

SCRIPT = {"image": "alpine:3.20", "script": ["make test"]}
Json = dict[str, Any]


def _status(job: Json) -> Json:
    status: Json = job.get("status") or {}
    return status


def _waiting(status: Json) -> Json:
    return next((c for c in status.get("conditions") or [] if c["type"] == "Waiting"), {})


def test_kubesim_a_gated_pod_holds_its_job_pending_with_no_clock_running(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    api: client.ApiClient,
    kubeconfig: Path,
    kubectl: Callable[..., Any],
) -> None:
    # Both limits far below the time the gate holds the pod.
    start_operator({"pendingTimeoutSeconds": 2})
    with GateWebhook(api, kubeconfig.parent / "pki", namespace):
        cijobs.create(namespace, "queued", {**SCRIPT, "timeout": "1s", "queueName": "team-a"})
        job = cijobs.wait(
            namespace, "queued", lambda j: _status(j).get("reason") == "SchedulingGated"
        )
    pod = cijobs.pod(namespace, "queued-1")
    assert pod is not None
    assert pod["metadata"]["labels"][QUEUE_LABEL] == "team-a"
    assert [g["name"] for g in pod["spec"]["schedulingGates"]] == [ADMISSION_GATE]
    status = _status(job)
    assert status["phase"] == "Pending" and ADMISSION_GATE in status["message"]
    assert _waiting(status)["reason"] == "SchedulingGated"
    # Past the pending timeout and the job's own timeout, the queue has not admitted it yet:
    # still waiting, nothing failed, the pod untouched.
    time.sleep(4)
    status = _status(cijobs.get(namespace, "queued") or {})
    assert (status["phase"], status["reason"]) == ("Pending", "SchedulingGated"), status
    pod = cijobs.pod(namespace, "queued-1")
    assert pod is not None and pod["metadata"].get("deletionTimestamp") is None
    # The queue admits it (Kueue removes the gate): it runs, its timeout counted from there.
    patch = '[{"op": "remove", "path": "/spec/schedulingGates"}]'
    kubectl("-n", namespace, "patch", "pod", "queued-1", "--type", "json", "-p", patch)
    status = _status(cijobs.wait_phase(namespace, "queued"))
    assert status["phase"] == "Succeeded", status
    assert [c["type"] for c in status["conditions"]] == ["Succeeded"]


def test_kubesim_queue_name_is_refused_unless_it_fits_a_label(
    cijobs: CiJobs, namespace: str
) -> None:
    with pytest.raises(client.ApiException) as refused:
        cijobs.create(namespace, "bad", {**SCRIPT, "queueName": "Team A"})
    assert refused.value.status == 422 and "spec.queueName" in str(refused.value.body)


def test_kubesim_max_running_jobs_per_namespace_holds_later_jobs_in_order(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator({"maxRunningJobsPerNamespace": 1})
    for name in ("first", "second", "third"):
        kubesim.plan_job(namespace, name, Behaviour.held())
    cijobs.create(namespace, "first", SCRIPT)
    cijobs.wait_phase(namespace, "first", "Running")
    # Created one second apart: their creationTimestamps (whole seconds) give the order.
    time.sleep(1)
    cijobs.create(namespace, "third", SCRIPT)
    time.sleep(1.1)
    cijobs.create(namespace, "second", SCRIPT)  # a later creationTimestamp than "third"
    for name in ("third", "second"):
        job = cijobs.wait(namespace, name, lambda j: _status(j).get("reason") == "NamespaceLimit")
        status = _status(job)
        assert status["phase"] == "Pending" and "maxRunningJobsPerNamespace" in status["message"]
        assert _waiting(status)["reason"] == "NamespaceLimit"
        assert cijobs.pods(namespace, name) == []
    kubesim.release(namespace, "first-1")
    assert _status(cijobs.wait_phase(namespace, "first"))["phase"] == "Succeeded"
    # First come first served: "third" came first.
    cijobs.wait_phase(namespace, "third", "Running")
    assert cijobs.pods(namespace, "second") == []
    assert _status(cijobs.get(namespace, "second") or {})["reason"] == "NamespaceLimit"
    kubesim.release(namespace, "third-1")
    cijobs.wait_phase(namespace, "second", "Running")
    kubesim.release(namespace, "second-1")
    for name in ("first", "second", "third"):
        assert _status(cijobs.wait_phase(namespace, name))["phase"] == "Succeeded"
