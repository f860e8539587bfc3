"""Every reason of the README's "Lifecycle and reasons", retry, timeout, cancel, TTL and
deletion, on the real API server with the kubelet simulator playing the node."""

from __future__ import annotations

import base64
import json
import time

import pytest

from integration.conftest import OperatorFactory
from integration.support import CiJobs
from testground.kubesim import KubeSim
from testground.plans import Behaviour

pytestmark = pytest.mark.cluster

SCRIPT = {"image": "alpine:3.20", "script": ["make test"]}


def _status(cijobs: CiJobs, namespace: str, name: str) -> dict:
    status: dict = cijobs.wait_phase(namespace, name)["status"]
    return status


@pytest.mark.parametrize(
    ("behaviour", "reason", "exit_code"),
    [
        (Behaviour.exits(3), "ScriptFailure", 3),
        (Behaviour.oom_killed(), "OOMKilled", 137),
        (Behaviour.evicted(), "PodEvicted", None),
        (Behaviour.no_shell(), "NoShell", None),
        (Behaviour.invalid_image(), "ImagePullFailed", None),
        (Behaviour.image_pull_failure(), "ImagePullFailed", None),
        (Behaviour.create_config_error(), "InvalidSpec", None),
    ],
    ids=["script", "oom", "evicted", "noshell", "invalid-image", "pull", "config"],
)
def test_kubesim_failure_reasons(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    behaviour: Behaviour,
    reason: str,
    exit_code: int | None,
) -> None:
    start_operator({"imagePullGraceSeconds": 1})
    kubesim.plan_job(namespace, "job", behaviour)
    cijobs.create(namespace, "job", SCRIPT)
    status = _status(cijobs, namespace, "job")
    assert (status["phase"], status["reason"]) == ("Failed", reason), status
    if exit_code is not None:
        assert status["exitCode"] == exit_code
    assert status["message"]
    assert status["conditions"][0]["status"] == "False"
    events = cijobs.wait_event(namespace, "job", reason)
    assert any(e["reason"] == reason and e["type"] == "Warning" for e in events), events


def test_kubesim_timeout_ends_a_running_job(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "slow", Behaviour.held())
    cijobs.create(namespace, "slow", {**SCRIPT, "timeout": "2s"})
    status = _status(cijobs, namespace, "slow")
    assert (status["phase"], status["reason"]) == ("Failed", "Timeout"), status
    pod = cijobs.pod(namespace, "slow-1")
    assert pod is None or pod["status"]["phase"] == "Failed"


def test_kubesim_pod_deleted_from_outside(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "victim", Behaviour.held())
    cijobs.create(namespace, "victim", SCRIPT)
    cijobs.wait_phase(namespace, "victim", "Running")
    cijobs.core.delete_namespaced_pod("victim-1", namespace)
    status = _status(cijobs, namespace, "victim")
    assert (status["phase"], status["reason"]) == ("Failed", "PodDeleted"), status


def test_kubesim_retry_makes_the_next_attempt_and_keeps_the_first(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "flaky", Behaviour.exits(1), attempt=1)
    kubesim.plan_job(namespace, "flaky", Behaviour.oom_killed(), attempt=2)
    kubesim.plan_job(namespace, "flaky", Behaviour.succeeds(), attempt=3)
    cijobs.create(namespace, "flaky", {**SCRIPT, "retry": {"max": 2}})
    status = _status(cijobs, namespace, "flaky")
    assert status["phase"] == "Succeeded", status
    assert status["attempt"] == 3 and status["podName"] == "flaky-3"
    earlier = status["attempts"]
    assert [(a["attempt"], a["reason"]) for a in earlier] == [
        (1, "ScriptFailure"),
        (2, "OOMKilled"),
    ]
    assert earlier[0]["exitCode"] == 1
    assert sorted(p["metadata"]["name"] for p in cijobs.pods(namespace, "flaky")) == [
        "flaky-1",
        "flaky-2",
        "flaky-3",
    ]


def test_kubesim_retry_only_for_listed_reasons(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "picky", Behaviour.exits(2))
    cijobs.create(namespace, "picky", {**SCRIPT, "retry": {"max": 2, "when": ["OOMKilled"]}})
    status = _status(cijobs, namespace, "picky")
    assert (status["phase"], status["reason"], status["attempt"]) == ("Failed", "ScriptFailure", 1)


def test_kubesim_cancel_stops_a_running_job(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "stopme", Behaviour.held())
    cijobs.create(namespace, "stopme", SCRIPT)
    cijobs.wait_phase(namespace, "stopme", "Running")
    cijobs.patch_spec(namespace, "stopme", {"cancel": True})
    status = _status(cijobs, namespace, "stopme")
    assert (status["phase"], status["reason"]) == ("Canceled", "Canceled"), status
    # Stopped, not deleted: the kubelet ends the pod past its lowered deadline and keeps it.
    cijobs.wait(
        namespace,
        "stopme",
        lambda _: (
            ((cijobs.pod(namespace, "stopme-1") or {}).get("status") or {}).get("reason")
            == "DeadlineExceeded"
        ),
        what="pod stopped",
    )
    pod = cijobs.pod(namespace, "stopme-1")
    assert pod is not None and pod["status"]["phase"] == "Failed"
    assert pod["metadata"]["annotations"]["cijob.dev/stop-reason"] == "Canceled"


def test_kubesim_ttl_deletes_the_finished_job_and_its_pods(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    cijobs.create(namespace, "brief", {**SCRIPT, "ttlSecondsAfterFinished": 3})
    assert cijobs.wait_phase(namespace, "brief")["status"]["phase"] == "Succeeded"
    _wait_gone(cijobs, namespace, "brief")


def _wait_gone(cijobs: CiJobs, namespace: str, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cijobs.get(namespace, name) is None and not cijobs.pods(namespace, name):
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} and its pods still exist after {timeout} s")


def test_kubesim_deleting_a_job_removes_its_pod_through_owner_references(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "doomed", Behaviour.held())
    cijobs.create(namespace, "doomed", SCRIPT)
    cijobs.wait_phase(namespace, "doomed", "Running")
    cijobs.delete(namespace, "doomed")
    _wait_gone(cijobs, namespace, "doomed")


def test_kubesim_invalid_spec_fails_the_job_and_the_operator_carries_on(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()  # no defaults.image: a job without an image slips through the API server
    cijobs.create(namespace, "noimage", {"script": ["true"]})
    cijobs.create(
        namespace, "missing", {**SCRIPT, "variablesFrom": [{"secretRef": {"name": "nope"}}]}
    )
    cijobs.create(namespace, "fine", SCRIPT)
    a = _status(cijobs, namespace, "noimage")
    assert (a["phase"], a["reason"]) == ("Failed", "InvalidSpec")
    assert "spec.image" in a["message"]
    b = _status(cijobs, namespace, "missing")
    assert (b["phase"], b["reason"]) == ("Failed", "InvalidSpec")
    assert "spec.variablesFrom[0]" in b["message"] and "nope" in b["message"]
    assert _status(cijobs, namespace, "fine")["phase"] == "Succeeded"


def test_kubesim_policy_violation(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator({"requireDigest": True, "allowedPullPolicies": ["IfNotPresent"]})
    cijobs.create(namespace, "unpinned", SCRIPT)
    cijobs.create(
        namespace,
        "pulls",
        {"image": {"name": "alpine@sha256:" + "0" * 64, "pullPolicy": "always"}, "script": ["x"]},
    )
    a = _status(cijobs, namespace, "unpinned")
    assert (a["phase"], a["reason"]) == ("Failed", "PolicyViolation")
    assert "digest" in a["message"]
    b = _status(cijobs, namespace, "pulls")
    assert (b["phase"], b["reason"]) == ("Failed", "PolicyViolation")
    assert "pull policy" in b["message"]


def test_kubesim_invalid_auth_config_names_the_problem_not_the_secret(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    secret = "hunter2-do-not-leak"
    bad = json.dumps({"auths": {"docker.io": {"auth": base64.b64encode(secret.encode()).decode()}}})
    cijobs.create(namespace, "badauth", {**SCRIPT, "variables": {"DOCKER_AUTH_CONFIG": bad}})
    status = _status(cijobs, namespace, "badauth")
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidAuthConfig"), status
    assert secret not in json.dumps(status)
