"""Service readiness and failures (docs/services.md) on the real API server, with the kubelet
simulator playing startup probes and sidecar restarts as the kubelet does."""

from __future__ import annotations

import pytest

from integration.conftest import OperatorFactory
from integration.support import CiJobs
from testground.kubesim import KubeSim
from testground.plans import Behaviour

pytestmark = pytest.mark.cluster

# A port given by the variable: no registry is read (the image is a public one, not here).
DB = {"name": "postgres:11.7", "alias": "db", "variables": {"HEALTHCHECK_TCP_PORT": "5432"}}
SPEC = {"image": "ruby:2.6", "services": [DB], "script": ["bundle exec rake spec"]}


def test_kubesim_a_service_never_ready_ends_the_attempt_service_not_ready(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator({"servicesWaitTimeoutSeconds": 2})
    kubesim.plan_job(namespace, "wait", Behaviour(never_ready=("db",)))
    cijobs.create(namespace, "wait", {**SPEC, "retry": {"max": 1, "when": ["ServiceNotReady"]}})
    status = cijobs.wait(
        namespace,
        "wait",
        lambda j: (j.get("status") or {}).get("phase") == "Failed",
        timeout=90,
        what="Failed",
    )["status"]
    assert status["reason"] == "ServiceNotReady", status
    assert "postgres:11.7 (container db)" in status["message"], status
    assert "port 5432 within 2 s" in status["message"], status
    # retryable: the first attempt's record, then the second's outcome
    assert status["attempt"] == 2 and status["attempts"][0]["reason"] == "ServiceNotReady"
    pod = cijobs.pod(namespace, "wait-1")
    assert pod is not None
    [sidecar] = pod["spec"]["initContainers"]
    assert sidecar["startupProbe"]["tcpSocket"] == {"port": 5432}
    assert (
        sidecar["startupProbe"]["periodSeconds"] * sidecar["startupProbe"]["failureThreshold"] == 2
    )
    # the build never started
    build = pod["status"]["containerStatuses"][0]["state"]
    assert "running" not in build, build
    events = cijobs.wait_event(namespace, "wait", "ServiceNotReady")
    assert any(e["reason"] == "Retrying" for e in events), events


def test_kubesim_a_service_restarted_twice_is_in_the_status_and_the_job_goes_on(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    behaviour = Behaviour(run_seconds=1.0, service_failures=(("db", 2, "OOMKilled"),))
    kubesim.plan_job(namespace, "flaky", behaviour)
    cijobs.create(namespace, "flaky", SPEC)
    status = cijobs.wait_phase(namespace, "flaky")["status"]
    assert status["phase"] == "Succeeded", status
    [svc] = status["services"]
    assert svc["container"] == "db" and svc["image"] == "postgres:11.7", svc
    assert svc["restartCount"] == 2 and svc["lastTerminationReason"] == "OOMKilled", svc
    assert svc["lastExitCode"] == 137
    events = cijobs.wait_event(namespace, "flaky", "ServiceFailed")
    failed = [e for e in events if e["reason"] == "ServiceFailed"]
    assert failed and all(e["type"] == "Warning" for e in failed), events
    # one Event per restart count seen go up, never one per status write
    assert len(failed) <= 2, failed
    assert any("restarted 2 times; last ended: OOMKilled" in e["message"] for e in failed)


def test_kubesim_an_unreadable_registry_means_no_probe_and_a_normal_event(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    spec = {**SPEC, "services": ["127.0.0.1:9/nobody/postgres:11.7"]}
    cijobs.create(namespace, "noreg", spec)
    status = cijobs.wait_phase(namespace, "noreg")["status"]
    assert status["phase"] == "Succeeded", status
    pod = cijobs.pod(namespace, "noreg-1")
    assert pod is not None and "startupProbe" not in pod["spec"]["initContainers"][0]
    events = cijobs.wait_event(namespace, "noreg", "ServicePortsUnknown")
    [note] = [e for e in events if e["reason"] == "ServicePortsUnknown"]
    assert note["type"] == "Normal" and "HEALTHCHECK_TCP_PORT" in note["message"], note
