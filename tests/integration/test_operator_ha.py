"""Two replicas with leader election: one works, the other stands by and takes over (the
kubelet simulator plays the node)."""

from __future__ import annotations

import urllib.request

import pytest
from kubernetes import client

from integration.conftest import OperatorFactory
from integration.support import CiJobs
from testground.kubesim import KubeSim

pytestmark = pytest.mark.cluster


def healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
        return bool(r.status == 200)


def test_kubesim_standby_is_healthy_and_takes_over_from_a_dead_leader(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    election = ["--leader-elect", "--lease-namespace", namespace, "--lease-name", "ha-test"]
    first = start_operator(extra_args=election)
    cijobs.create(namespace, "one", {"image": "alpine", "script": ["true"]})
    assert cijobs.wait_phase(namespace, "one")["status"]["phase"] == "Succeeded"
    second = start_operator(extra_args=election)
    assert healthy(first.port) and healthy(second.port)  # the standby passes its probes
    holder = client.CoordinationV1Api(cijobs.api).read_namespaced_lease("ha-test", namespace)
    assert holder.spec.holder_identity.endswith(f"-{first.proc.pid}")  # type: ignore[union-attr]
    first.kill()
    cijobs.create(namespace, "two", {"image": "alpine", "script": ["true"]})
    # The Lease lasts 15 s: the standby takes over once it has expired.
    assert cijobs.wait_phase(namespace, "two", timeout=90)["status"]["phase"] == "Succeeded"
    holder = client.CoordinationV1Api(cijobs.api).read_namespaced_lease("ha-test", namespace)
    assert holder.spec.holder_identity.endswith(f"-{second.proc.pid}")  # type: ignore[union-attr]
