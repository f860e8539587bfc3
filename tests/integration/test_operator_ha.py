"""Two replicas with leader election: one works, the other stands by and takes over (the
kubelet simulator plays the node). A frozen leader makes no write once it lost the lease; a
stopped one releases it."""

from __future__ import annotations

import signal
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from integration.conftest import OperatorFactory
from integration.support import GROUP, PLURAL, VERSION, CiJobs, Operator
from testground.kubesim import KubeSim
from testground.waits import wait_for

pytestmark = pytest.mark.cluster

JOB = {"image": "alpine", "script": ["true"]}


def healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
        return bool(r.status == 200)


def election(namespace: str, lease: str) -> list[str]:
    return ["--leader-elect", "--lease-namespace", namespace, "--lease-name", lease]


def holder(cijobs: CiJobs, namespace: str, lease: str) -> str:
    spec = client.CoordinationV1Api(cijobs.api).read_namespaced_lease(lease, namespace).spec
    return str(spec.holder_identity or "")  # type: ignore[union-attr]


def pid_suffix(op: Operator) -> str:
    assert op.proc is not None
    return f"-{op.proc.pid}"


def wait_holder(cijobs: CiJobs, namespace: str, lease: str, op: Operator) -> str:
    def held() -> str | None:
        now = holder(cijobs, namespace, lease)
        return now if now.endswith(pid_suffix(op)) else None

    return wait_for(f"{pid_suffix(op)} to hold the lease {lease}", held, timeout=90)


def exit_status(op: Operator, timeout: float = 60) -> int:
    assert op.proc is not None
    return op.proc.wait(timeout)


def versions(cijobs: CiJobs, namespace: str) -> dict[str, str]:
    """The resourceVersion of every CiJob and pod of the namespace: any write changes one."""
    jobs: Any = cijobs.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    pods: Any = cijobs.core.list_namespaced_pod(namespace)
    seen = {
        f"cijob/{j['metadata']['name']}": j["metadata"]["resourceVersion"] for j in jobs["items"]
    }
    seen.update({f"pod/{p.metadata.name}": p.metadata.resource_version for p in pods.items})
    return seen


def test_kubesim_standby_is_healthy_and_takes_over_from_a_dead_leader(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    first = start_operator(extra_args=election(namespace, "ha-test"))
    cijobs.create(namespace, "one", JOB)
    assert cijobs.wait_phase(namespace, "one")["status"]["phase"] == "Succeeded"
    second = start_operator(extra_args=election(namespace, "ha-test"))
    assert healthy(first.port) and healthy(second.port)  # the standby passes its probes
    assert holder(cijobs, namespace, "ha-test").endswith(pid_suffix(first))
    first.kill()
    cijobs.create(namespace, "two", JOB)
    # The Lease lasts 15 s: the standby takes over once it has expired.
    assert cijobs.wait_phase(namespace, "two", timeout=90)["status"]["phase"] == "Succeeded"
    assert holder(cijobs, namespace, "ha-test").endswith(pid_suffix(second))


def test_kubesim_a_stopped_leader_releases_the_lease_and_exits_0(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    first = start_operator(extra_args=election(namespace, "ha-release"))
    wait_holder(cijobs, namespace, "ha-release", first)
    second = start_operator(extra_args=election(namespace, "ha-release"))
    assert first.proc is not None
    first.proc.send_signal(signal.SIGTERM)
    assert exit_status(first) == 0
    assert "released the lease" in first.log()
    # Released, not left to expire: the moment it is gone, the lease names no one, or the
    # standby that took it at its next try.
    now = holder(cijobs, namespace, "ha-release")
    assert now == "" or now.endswith(pid_suffix(second)), now
    wait_holder(cijobs, namespace, "ha-release", second)
    cijobs.create(namespace, "after", JOB)
    assert cijobs.wait_phase(namespace, "after")["status"]["phase"] == "Succeeded"
    assert second.proc is not None
    second.proc.send_signal(signal.SIGTERM)
    assert exit_status(second) == 0
    assert holder(cijobs, namespace, "ha-release") == ""


def test_kubesim_a_standby_stopped_exits_0_and_leaves_the_lease(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    first = start_operator(extra_args=election(namespace, "ha-standby"))
    held = wait_holder(cijobs, namespace, "ha-standby", first)
    second = start_operator(extra_args=election(namespace, "ha-standby"))
    assert second.proc is not None
    second.proc.send_signal(signal.SIGTERM)
    assert exit_status(second) == 0
    assert holder(cijobs, namespace, "ha-standby") == held


def test_kubesim_a_frozen_leader_makes_no_write_after_it_lost_the_lease(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    """SIGSTOP past the lease, a standby takes over, SIGCONT: the old leader's overdue timers
    and buffered watch events find the fence shut; it stops and exits 1 without a write."""
    first = start_operator(extra_args=election(namespace, "ha-freeze"))
    cijobs.create(namespace, "before", JOB)
    assert cijobs.wait_phase(namespace, "before")["status"]["phase"] == "Succeeded"
    wait_holder(cijobs, namespace, "ha-freeze", first)
    second = start_operator(extra_args=election(namespace, "ha-freeze"))
    assert first.proc is not None
    first.proc.send_signal(signal.SIGSTOP)
    try:
        # Its watches deliver this job to the frozen leader too, to act on when it thaws.
        cijobs.create(namespace, "during", JOB)
        wait_holder(cijobs, namespace, "ha-freeze", second)
        assert cijobs.wait_phase(namespace, "during")["status"]["phase"] == "Succeeded"
        before = versions(cijobs, namespace)
    finally:
        first.proc.send_signal(signal.SIGCONT)
    assert exit_status(first) == 1
    assert "lost the lease" in first.log()
    assert versions(cijobs, namespace) == before  # nothing was written meanwhile
    assert holder(cijobs, namespace, "ha-freeze").endswith(pid_suffix(second))
    cijobs.create(namespace, "after", JOB)
    assert cijobs.wait_phase(namespace, "after")["status"]["phase"] == "Succeeded"


def test_kubesim_without_election_a_stop_exits_0(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    op = start_operator()
    cijobs.create(namespace, "one", JOB)
    assert cijobs.wait_phase(namespace, "one")["status"]["phase"] == "Succeeded"
    assert op.proc is not None
    op.proc.send_signal(signal.SIGTERM)
    assert exit_status(op) == 0
