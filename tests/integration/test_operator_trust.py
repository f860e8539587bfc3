"""A job's result is always its own run's, and nothing of an ended attempt keeps running
(docs/lifecycle.md), on the real API server with the kubelet simulator playing the node."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from integration.conftest import OperatorFactory
from integration.support import CiJobs, free_port
from testground.kubesim import KubeSim
from testground.plans import Behaviour
from testground.waits import wait_for

pytestmark = pytest.mark.cluster

SCRIPT = {"image": "alpine:3.20", "script": ["make test"]}


def _status(job: dict[str, Any]) -> dict[str, Any]:
    return dict(job.get("status") or {})


def _t(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _own_pod(cijobs: CiJobs, namespace: str, name: str, job: dict[str, Any]) -> dict[str, Any]:
    pod = cijobs.pod(namespace, name)
    assert pod is not None, f"no pod {name}"
    owner = next(r for r in pod["metadata"]["ownerReferences"] if r.get("controller"))
    assert owner["uid"] == job["metadata"]["uid"], (owner, job["metadata"]["uid"])
    return pod


def test_kubesim_rerun_under_the_same_name_while_the_old_pod_exists_runs_its_own_pod(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    core = cijobs.core
    kubesim.plan_job(namespace, "rerun", Behaviour.succeeds(), attempt=1)
    cijobs.create(namespace, "rerun", SCRIPT)
    first = cijobs.wait_phase(namespace, "rerun")
    assert _status(first)["phase"] == "Succeeded"
    # A finalizer holds the old pod after its CiJob is gone, as a slow garbage collector would.
    core.patch_namespaced_pod(
        "rerun-1", namespace, {"metadata": {"finalizers": ["test.cijob.dev/hold"]}}
    )
    cijobs.delete(namespace, "rerun")
    wait_for("the first CiJob gone", lambda: cijobs.get(namespace, "rerun") is None)
    kubesim.plan_job(namespace, "rerun", Behaviour.exits(3), attempt=1)
    second = cijobs.create(namespace, "rerun", SCRIPT)
    waiting = cijobs.wait(
        namespace,
        "rerun",
        lambda j: _status(j).get("reason") == "ObjectNameInUse",
        what="a visible wait for the old pod",
    )
    assert _status(waiting)["phase"] == "Pending"
    assert first["metadata"]["uid"] in _status(waiting)["message"]
    core.patch_namespaced_pod("rerun-1", namespace, {"metadata": {"finalizers": None}})
    done = cijobs.wait_phase(namespace, "rerun", timeout=90)
    # its own run's result: the new pod's exit code, never the old pod's success
    assert (_status(done)["phase"], _status(done)["exitCode"]) == ("Failed", 3), done
    assert done["metadata"]["uid"] == second["metadata"]["uid"]
    _own_pod(cijobs, namespace, "rerun-1", second)


def test_kubesim_a_users_pod_of_the_clashing_name_is_never_adopted(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator()
    users = cijobs.core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "clash-1"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], "nodeName": "nowhere"},
        },
    )
    cijobs.create(namespace, "clash", SCRIPT)
    status = _status(cijobs.wait_phase(namespace, "clash"))
    assert (status["phase"], status["reason"]) == ("Failed", "NameConflict"), status
    assert "clash-1" in status["message"]
    after = cijobs.core.read_namespaced_pod("clash-1", namespace)
    assert after.metadata.resource_version == users.metadata.resource_version
    assert after.metadata.uid == users.metadata.uid


def test_kubesim_an_image_that_never_pulls_is_stopped_before_its_retry(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator({"imagePullGraceSeconds": 1})
    kubesim.plan_job(namespace, "pull", Behaviour.image_pull_failure(), attempt=1)
    kubesim.plan_job(namespace, "pull", Behaviour.succeeds(), attempt=2)
    job = cijobs.create(
        namespace, "pull", {**SCRIPT, "retry": {"max": 1, "when": ["ImagePullFailed"]}}
    )
    status = _status(cijobs.wait_phase(namespace, "pull"))
    assert (status["phase"], status["attempt"]) == ("Succeeded", 2), status
    assert status["attempts"][0]["reason"] == "ImagePullFailed"
    # attempt 1's pod was stopped, not deleted, and had ended before attempt 2 was created
    first = _own_pod(cijobs, namespace, "pull-1", job)
    assert (first["status"]["phase"], first["status"]["reason"]) == ("Failed", "DeadlineExceeded")
    assert first["metadata"]["annotations"]["cijob.dev/stop-reason"] == "ImagePullFailed"
    ended = kubesim.wait_for(namespace, "pull-1", "Failed")
    second = _own_pod(cijobs, namespace, "pull-2", job)
    times = [_t(c["lastTransitionTime"]) for c in ended.get("conditions") or []]
    assert _t(second["metadata"]["creationTimestamp"]) >= max(times)


def test_kubesim_a_final_invalid_spec_attempt_is_stopped(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator({"imagePullGraceSeconds": 1})
    kubesim.plan_job(namespace, "cfg", Behaviour.create_config_error())
    job = cijobs.create(namespace, "cfg", SCRIPT)
    status = _status(cijobs.wait_phase(namespace, "cfg"))
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidSpec"), status
    kubesim.wait_for(namespace, "cfg-1", "Failed")
    assert _own_pod(cijobs, namespace, "cfg-1", job)["status"]["phase"] == "Failed"


def test_kubesim_a_retry_after_a_long_first_attempt_has_its_own_clock(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "clock", Behaviour.exits(1, run_seconds=3), attempt=1)
    kubesim.plan_job(namespace, "clock", Behaviour.succeeds(run_seconds=3), attempt=2)
    spec = {**SCRIPT, "timeout": "4s", "retry": {"max": 1}}
    cijobs.create(namespace, "clock", spec)
    status = _status(cijobs.wait_phase(namespace, "clock"))
    # 6 s in all, more than the 4 s timeout: each attempt counts its own
    assert (status["phase"], status["attempt"]) == ("Succeeded", 2), status
    assert _t(status["attemptStartTime"]) >= _t(status["attempts"][0]["completionTime"])
    assert _t(status["startTime"]) <= _t(status["attempts"][0]["startTime"])


def test_kubesim_requests_above_limits_fail_with_the_api_servers_message(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator()
    resources = {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}
    cijobs.create(namespace, "greedy", {**SCRIPT, "resources": resources})
    status = _status(cijobs.wait_phase(namespace, "greedy"))
    assert (status["phase"], status["reason"]) == ("Failed", "PodInvalid"), status
    assert "must be less than or equal to cpu limit" in status["message"]
    events = cijobs.wait_event(namespace, "greedy", "PodInvalid")
    assert [e["reason"] for e in events].count("PodInvalid") == 1, events


def test_kubesim_a_missing_service_account_is_waited_for(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator()
    cijobs.create(namespace, "sa", {**SCRIPT, "serviceAccountName": "ci-bot"})
    waiting = cijobs.wait(
        namespace, "sa", lambda j: _status(j).get("reason") == "ServiceAccountMissing"
    )
    assert _status(waiting)["phase"] == "Pending"
    assert "ci-bot" in _status(waiting)["message"]
    cijobs.core.create_namespaced_service_account(namespace, {"metadata": {"name": "ci-bot"}})
    assert _status(cijobs.wait_phase(namespace, "sa", timeout=90))["phase"] == "Succeeded"


def test_kubesim_a_full_quota_that_frees_up_lets_the_job_start(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator()
    core = cijobs.core
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "one-pod"}, "spec": {"hard": {"pods": "1"}}}
    )
    wait_for(
        "the quota controller counting the quota",
        lambda: core.read_namespaced_resource_quota("one-pod", namespace).status.hard,
    )
    occupant = {
        "metadata": {"name": "occupant"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "nodeName": "nowhere"},
    }
    core.create_namespaced_pod(namespace, occupant)
    cijobs.create(namespace, "queued", SCRIPT)
    waiting = cijobs.wait(
        namespace, "queued", lambda j: _status(j).get("reason") == "QuotaExceeded"
    )
    conditions = {c["type"]: c for c in _status(waiting)["conditions"]}
    assert conditions["Waiting"]["status"] == "True"
    assert "exceeded quota" in conditions["Waiting"]["message"]
    core.delete_namespaced_pod("occupant", namespace, grace_period_seconds=0)
    status = _status(cijobs.wait_phase(namespace, "queued", timeout=120))
    assert status["phase"] == "Succeeded", status
    assert "Waiting" not in {c["type"] for c in status["conditions"]}


@pytest.fixture
def scheduler(cluster: Any, tmp_path: Path) -> Iterator[None]:
    """A real kube-scheduler on the test ground, to say why it cannot place a pod."""
    log = (tmp_path / "kube-scheduler.log").open("wb")
    proc = subprocess.Popen(
        [
            str(cluster.bin / "kube-scheduler"),
            f"--kubeconfig={cluster.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(15)


def test_kubesim_a_pod_no_node_can_take_names_the_schedulers_reason(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, scheduler: None
) -> None:
    start_operator()
    cijobs.create(namespace, "nowhere", {**SCRIPT, "nodeSelector": {"disktype": "none-has-it"}})
    waiting = cijobs.wait(
        namespace,
        "nowhere",
        lambda j: _status(j).get("reason") == "Unschedulable",
        timeout=90,
        what="the scheduler's reason",
    )
    status = _status(waiting)
    assert status["phase"] == "Pending"
    assert "node(s) didn't match" in status["message"] or "nodes are available" in status["message"]
    assert any(c["type"] == "Waiting" for c in status["conditions"])
