"""On the REAL node: a namespace that enforces the `restricted` Pod Security Standard runs a job
with the platform's podTemplate (docs/pod-policy.md): the build and its service run as uid 1000
with a read-only root filesystem, and the build still writes into /builds and /tmp."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from integration.conftest import OperatorFactory
from integration.support import CiJobs
from integration.test_realnode import build_log, explain, finished, namespace, node, spec
from testground import realnode

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]
__all__ = ["namespace", "node"]  # the real node's fixtures, used here

CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}
TEMPLATE: dict[str, Any] = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "buildContainerSecurityContext": CONTAINER,
    "serviceContainerSecurityContext": CONTAINER,
}


def test_restricted_namespace_runs_a_job_non_root_with_a_read_only_root(
    node: realnode.NodeState,
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    api: client.ApiClient,
) -> None:
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    client.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": labels}})
    start_operator({"podTemplate": TEMPLATE}, env={"DOCKER_AUTH_CONFIG": node.docker_auth_config()})
    script = [
        "id -u",
        "id -g",
        "pwd",
        "echo built > built.txt && cat $CI_PROJECT_DIR/built.txt",
        "echo scratch > /tmp/scratch && cat /tmp/scratch",
        "if touch /rootfs-write 2>/dev/null; then echo root writable; else echo root read-only; fi",
        "for i in $(seq 50); do wget -qO- http://web:8080/ && break; sleep 0.2; done",
    ]
    cijobs.create(
        namespace,
        "restricted",
        spec(node.image("sh"), script, services=[{"name": node.image("http"), "alias": "web"}]),
    )
    status = finished(cijobs, namespace, "restricted")
    assert status["phase"] == "Succeeded", f"{status}\n{explain(cijobs, namespace, 'restricted')}"
    log = build_log(cijobs, namespace, status["podName"])
    assert "$ id -u\n1000\n" in log and "$ id -g\n1000\n" in log, log
    assert f"/builds/{namespace}/restricted\n" in log, log
    assert "\nbuilt\n" in log and "\nscratch\n" in log, log
    assert "root read-only" in log, log
    assert "hello from the cijob test service" in log, log
    pod = cijobs.pod(namespace, status["podName"])
    assert pod is not None and pod["spec"]["automountServiceAccountToken"] is False
