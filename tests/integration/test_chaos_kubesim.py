"""The chaos suite's small run (`make chaos` is the full one): a few dozen CiJobs on the kubelet
simulator while the operator is SIGKILLed, kube-apiserver and etcd restart, the leader of two
replicas is frozen past its lease, pods are deleted and evicted and jobs re-created; then every
check of tests/chaos/checks.py must find nothing."""

from __future__ import annotations

import pytest

from chaos import plan, run
from testground import cluster

pytestmark = pytest.mark.cluster
SEED = 7  # a fixed scenario, replayed by `make chaos CHAOS_ARGS='--small --seed 7'`


@pytest.mark.timeout(900)
def test_kubesim_chaos_small_run_breaks_nothing() -> None:
    # Its own test ground beside the session's, kept (logs, audit log) until the next run;
    # the operators' logs and the report in .cluster/chaos-test-run/.
    root = cluster.default_root()
    result = run.run(plan.SMALL, SEED, root / "chaos-test-run", root=root / "chaos-test")
    text = run.report(result)
    print(text)
    assert result.violations == 0, text
