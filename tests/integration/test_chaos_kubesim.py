"""The chaos suite's small run (`make chaos` is the full one): a few dozen CiJobs on the kubelet
simulator while the operator is SIGKILLed, kube-apiserver and etcd restart, the leader of two
replicas is frozen past its lease, pods are deleted and evicted and jobs re-created; then every
check of tests/chaos/checks.py must find nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos import plan, run

pytestmark = pytest.mark.cluster
SEED = 7  # a fixed scenario: a failure here can be replayed with `make chaos CHAOS_ARGS=...`


@pytest.mark.timeout(900)
def test_kubesim_chaos_small_run_breaks_nothing(tmp_path: Path) -> None:
    result = run.run(plan.SMALL, SEED, tmp_path, root=tmp_path / "testground")
    text = run.report(result)
    print(text)
    assert result.violations == 0, text
