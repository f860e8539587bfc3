"""Where a chaos run happens: its namespace, Lease and API paths, and its own test ground."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from chaos import audit
from testground import cluster

Echo = Callable[[str], None]

NAMESPACE = "chaos"
LEASE = "cijob-chaos"
LEASE_SECONDS = 15  # the operator's (cijob.leader.Timing)
FREEZE_SECONDS = LEASE_SECONDS + 10  # past the lease, so the standby takes over meanwhile
LEADER_TRIES = 20  # 2 s apart: long enough for a dead holder's lease to expire
POD_TRIES = 10  # 1 s apart
DECOY_NODE = "chaos-decoy-node"  # no node plays it: a decoy pod stays as it was made
GROUP, VERSION, PLURAL = "cijob.dev", "v1alpha1", "cijobs"
OPERATOR_SETTINGS = {"imagePullGraceSeconds": 2}
CIJOBS = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
SECRETS = f"/api/v1/namespaces/{NAMESPACE}/secrets"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"
LIVE = ("Pending", "Running")
SIM_WRITE_ATTEMPTS = 30  # about 3.5 minutes of retries: longer than any restart here
API_PATIENCE = 180.0  # how long a call of the driver is retried while the control plane is away
TERMINAL = ("Succeeded", "Failed", "Canceled")
REPO = Path(__file__).resolve().parents[2]


def default_root() -> Path:
    """The chaos test ground's state: `.cluster/chaos` beside the usual one."""
    return cluster.default_root() / "chaos"


def _kubectl(root: Path, kubeconfig: str, *args: str) -> None:
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    proc = subprocess.run(
        [str(cluster.Layout(root).binary("kubectl")), *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}")


def prepare(root: Path, echo: Echo) -> cluster.State:
    """A fresh control plane of its own (sharing the built binaries), audit log on."""
    cluster.beside(root)
    policy = root / "audit-policy.yaml"
    policy.write_text(audit.POLICY)
    cluster.down(root, echo=lambda _: None)
    state, _ = cluster.up(root, echo=echo, audit_policy=policy)
    crds = sorted((REPO / "crds").glob("*.yaml"))
    for path in crds:
        _kubectl(root, state.kubeconfig, "apply", "--server-side", "-f", str(path))
    _kubectl(root, state.kubeconfig, "wait", "--for=condition=Established", "--timeout=60s",
             "crd/cijobs.cijob.dev")  # fmt: skip
    _kubectl(root, state.kubeconfig, "create", "namespace", NAMESPACE)
    _kubectl(root, state.kubeconfig, "wait", "--for=create", "--timeout=60s", "-n", NAMESPACE,
             "serviceaccount/default")  # fmt: skip
    return state
