"""The seed's first example for real: a PostgreSQL service (Debian's packages, slow to start)
the build waits for, and a service the kernel OOM-kills while the job goes on. Real node
only (docs/real-node.md); run under the machine's real-node lock."""

from __future__ import annotations

import pytest
from kubernetes import client

from integration.conftest import OperatorFactory
from integration.support import CiJobs
from integration.test_realnode import build_log, explain, finished, namespace, node, spec
from testground import realnode

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]
__all__ = ["namespace", "node"]  # the real node's fixtures, shared with test_realnode


def _why(cijobs: CiJobs, namespace: str, status: dict[str, object]) -> str:
    """The status, the namespace's Secrets and the kubelet's words on them, for a failure."""
    secrets = [s.metadata.name for s in cijobs.core.list_namespaced_secret(namespace).items]
    log = realnode.cluster.default_root() / "logs" / "kubelet.log"
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if "secret" in ln.lower()]
    return f"\nstatus {status}\nsecrets {secrets}\nkubelet: " + "\n".join(lines[-15:])


def test_seed_example_waits_for_a_slow_postgres_by_derived_name_and_alias(
    node: realnode.NodeState, start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    # A 145 MB layer; the kubelet's first pull may go without the pull Secret (the node
    # authorizer has not yet seen the pod) and is retried after a back-off.
    start_operator({"servicesWaitTimeoutSeconds": 90, "imagePullGraceSeconds": 300})
    derived = "127.0.0.1-cijob-postgres"  # from 127.0.0.1:5555/cijob/postgres:1
    service = {
        "name": "$REGISTRY/cijob/postgres:1",
        "alias": "db",
        # slow on purpose: no wait loop below, the build starts once the port accepts
        "variables": {"POSTGRES_START_DELAY": "8"},
    }
    variables = {
        "DOCKER_AUTH_CONFIG": node.docker_auth_config(),  # the job's pull credentials
        "REGISTRY": node.registry,
        "POSTGRES_DB": "test",
        "DATABASE_URL": "postgres://postgres@db:5432/${POSTGRES_DB}",
    }
    cijobs.create(
        namespace,
        "rspec",
        spec(
            "${REGISTRY}/cijob/psql:1",
            [
                "psql \"$DATABASE_URL\" -tAc 'select 40 + 2'",
                f"psql -h {derived} -U postgres -d test -tAc 'select current_database()'",
            ],
            services=[service],
            variables=variables,
            beforeScript=["psql --version", 'echo "job $CI_JOB_NAME ($CI_JOB_ID), CI=$CI"'],
        ),
    )
    status = finished(cijobs, namespace, "rspec", timeout=300)
    assert status["phase"] == "Succeeded", explain(cijobs, namespace, "rspec") + _why(
        cijobs, namespace, status
    )
    assert not status.get("attempts") and not status.get("services"), status
    pod = cijobs.pod(namespace, status["podName"])
    assert pod is not None
    [sidecar] = pod["spec"]["initContainers"]
    # the port came from the image config in the private registry (EXPOSE 5432)
    assert sidecar["startupProbe"]["tcpSocket"] == {"port": 5432}, sidecar
    assert sidecar["image"] == f"{node.registry}/cijob/postgres:1"
    log = build_log(cijobs, namespace, status["podName"])
    assert "psql (PostgreSQL) 15" in log and "\n42\n" in log and "\ntest\n" in log, log
    assert f"job rspec ({pod['metadata']['uid']}), CI=true" in log, log
    service_log = cijobs.core.read_namespaced_pod_log(status["podName"], namespace, container="db")
    assert "starting in 8 s" in service_log, service_log


def test_an_oom_killed_service_is_in_the_status_and_the_job_goes_on(
    node: realnode.NodeState,
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    api: client.ApiClient,
) -> None:
    # Every container of the namespace gets 32 MiB, as a LimitRange gives teams.
    client.CoreV1Api(api).create_namespaced_limit_range(
        namespace,
        {
            "metadata": {"name": "small"},
            "spec": {"limits": [{"type": "Container", "default": {"memory": "32Mi"}}]},
        },
    )
    start_operator(env={"DOCKER_AUTH_CONFIG": node.docker_auth_config()})
    hog = {
        "name": node.image("sh"),
        "alias": "hog",
        "entrypoint": ["sh", "-c", "echo allocating; a=x; while :; do a=$a$a; done"],
    }
    cijobs.create(
        namespace,
        "oom",
        spec(node.image("sh"), ["sleep 20", "echo still here"], services=[hog]),
    )
    status = finished(cijobs, namespace, "oom", timeout=180)
    assert status["phase"] == "Succeeded", explain(cijobs, namespace, "oom")
    [svc] = status["services"]
    assert svc["container"] == "hog" and svc["lastTerminationReason"] == "OOMKilled", svc
    assert svc["restartCount"] >= 1 and svc["lastExitCode"] == 137, svc
    events = cijobs.wait_event(namespace, "oom", "ServiceFailed")
    failed = [e for e in events if e["reason"] == "ServiceFailed"]
    assert failed and "OOMKilled" in failed[0]["message"], events
    assert "still here" in build_log(cijobs, namespace, status["podName"])
