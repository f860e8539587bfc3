"""The tracking finalizer (docs/lifecycle.md, "One pod per attempt"): a deleted pod stays until
its attempt is in the job's status, then goes; on the real API server, the kubelet simulator
playing the node."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cijob.config import OperatorConfig
from cijob.job import job_from_body
from cijob.render import names
from cijob.render.pod import get_pod
from integration.conftest import OperatorFactory
from integration.support import CiJobs
from testground.kubesim import KubeSim
from testground.plans import Behaviour
from testground.waits import wait_for

pytestmark = pytest.mark.cluster

SCRIPT = {"image": "alpine:3.20", "script": ["make test"]}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md"


def _held(cijobs: CiJobs, namespace: str, name: str) -> dict[str, Any] | None:
    """The pod, once it is deleted and kept by the tracking finalizer."""
    pod = cijobs.pod(namespace, name)
    meta = (pod or {}).get("metadata") or {}
    if meta.get("deletionTimestamp") and names.TRACKING_FINALIZER in (meta.get("finalizers") or []):
        return pod
    return None


def _gone(cijobs: CiJobs, namespace: str, name: str) -> bool:
    return cijobs.pod(namespace, name) is None


def test_kubesim_a_pod_made_and_deleted_while_no_operator_runs_is_recorded_not_made_again(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    # What a leader that died right after its create leaves: the attempt's pod, no status.
    jobs = {
        "retried": cijobs.create(namespace, "retried", {**SCRIPT, "retry": {"max": 1}}),
        "once": cijobs.create(namespace, "once", SCRIPT),
    }
    for name, job in jobs.items():
        kubesim.plan_job(namespace, name, Behaviour.held(), attempt=1)
        pod = get_pod(job_from_body(job), 1, OperatorConfig())
        cijobs.core.create_namespaced_pod(namespace, pod)
        kubesim.wait_for(namespace, f"{name}-1", "Running")
        # Deleted before any replica looked: the node kills it, the finalizer keeps it.
        cijobs.core.delete_namespaced_pod(f"{name}-1", namespace)
        held = wait_for(
            f"{name}-1 killed and held", lambda n=name: _held(cijobs, namespace, n + "-1")
        )
        assert held["status"]["phase"] in ("Running", "Failed")
    kubesim.plan_job(namespace, "retried", Behaviour.succeeds(), attempt=2)
    start_operator()

    retried = cijobs.wait_phase(namespace, "retried", timeout=60)["status"]
    assert (retried["phase"], retried["attempt"]) == ("Succeeded", 2), retried
    first = retried["attempts"][0]
    assert (first["attempt"], first["podName"], first["reason"]) == (1, "retried-1", "PodDeleted")
    once = cijobs.wait_phase(namespace, "once", timeout=60)["status"]
    assert (once["phase"], once["reason"], once["attempt"]) == ("Failed", "PodDeleted", 1), once
    # Accounted for, the pods went; attempt 1 was never made again.
    for name in ("retried-1", "once-1"):
        wait_for(f"{name} released", lambda n=name: _gone(cijobs, namespace, n))
        runs = [s for s in kubesim.history(namespace, name) if s.get("phase") == "Running"]
        assert len(runs) == 1, kubesim.history(namespace, name)
    assert [p["metadata"]["name"] for p in cijobs.pods(namespace, "retried")] == ["retried-2"]
    assert cijobs.pods(namespace, "once") == []


def test_kubesim_a_cijob_deleted_with_its_pods_leaves_no_pod_behind(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    op = start_operator()
    kubesim.plan_job(namespace, "busy", Behaviour(hold=True, sigterm_seconds=1.0), attempt=1)
    cijobs.create(namespace, "done", SCRIPT)
    cijobs.create(namespace, "busy", SCRIPT)
    cijobs.wait_phase(namespace, "done", "Succeeded")
    cijobs.wait_phase(namespace, "busy", "Running")
    pod = cijobs.pod(namespace, "busy-1")
    assert pod is not None and pod["metadata"]["finalizers"] == [names.TRACKING_FINALIZER]
    cijobs.delete(namespace, "done")
    cijobs.delete(namespace, "busy")
    for name in ("done-1", "busy-1"):
        wait_for(f"{name} gone with its CiJob", lambda n=name: _gone(cijobs, namespace, n))
    # The busy pod ran on through its SIGTERM, then was ended before it went.
    assert kubesim.history(namespace, "busy-1")[-1]["phase"] == "Failed"

    # Deleted while no operator runs: the pod stays until a replica has accounted for it.
    cijobs.create(namespace, "later", SCRIPT)
    cijobs.wait_phase(namespace, "later", "Succeeded")
    op.stop()
    cijobs.delete(namespace, "later")
    wait_for("later-1 held", lambda: _held(cijobs, namespace, "later-1"))
    start_operator()
    wait_for("later-1 released", lambda: _gone(cijobs, namespace, "later-1"))
    assert cijobs.core.list_namespaced_pod(namespace).items == []


def test_kubesim_with_the_operator_gone_the_documented_command_releases_its_pods(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    cluster: Any,
) -> None:
    op = start_operator()
    cijobs.create(namespace, "left", SCRIPT)
    cijobs.wait_phase(namespace, "left", "Succeeded")
    op.stop()
    cijobs.delete(namespace, "left")
    wait_for("left-1 held", lambda: _held(cijobs, namespace, "left-1"))
    found = re.search(r"```sh\n(kubectl get pods --all-namespaces.*?)```", DOCS.read_text(), re.S)
    assert found, "docs/lifecycle.md shows the administrator's command"
    command = found.group(1).replace("--all-namespaces", f"-n {namespace}")
    env = {
        **os.environ,
        "PATH": f"{cluster.bin}:{os.environ['PATH']}",
        "KUBECONFIG": str(cluster.kubeconfig),
    }
    subprocess.run(["bash", "-euo", "pipefail", "-c", command], env=env, check=True, timeout=60)
    wait_for("left-1 released", lambda: _gone(cijobs, namespace, "left-1"))
