"""The benchmark's arithmetic: request counter deltas, percentiles, process figures."""

from __future__ import annotations

import os
from collections import Counter

from bench import load, probes


def test_a_delta_keeps_only_what_grew() -> None:
    before = Counter({("POST", "pods"): 5, ("GET", "pods"): 2})
    after = Counter({("POST", "pods"): 8, ("GET", "pods"): 2, ("PATCH", "cijobs/status"): 3})
    assert probes.diff(after, before) == Counter(
        {("POST", "pods"): 3, ("PATCH", "cijobs/status"): 3}
    )


def test_percentiles_are_values_that_were_measured() -> None:
    values = [float(v) for v in range(1, 101)]
    assert load.percentiles(values) == {"p50": 51.0, "p90": 91.0, "p99": 100.0, "max": 100.0}
    assert load.percentiles([7.0]) == {"p50": 7.0, "p90": 7.0, "p99": 7.0, "max": 7.0}


def test_process_figures_are_read_from_proc() -> None:
    stats = probes.proc_stats(os.getpid())
    assert stats.cpu_seconds > 0
    assert 0 < stats.rss_mb <= stats.peak_rss_mb


def test_the_second_ceiling_creates_the_operators_own_pods_without_an_owner() -> None:
    pod = load.rendered_pod("p1", "ns")
    assert pod["metadata"]["labels"] == {load.CEILING_LABEL: "true"}
    assert "ownerReferences" not in pod["metadata"]  # the garbage collector would delete it
    bare = load.bare_pod("p1")
    assert len(str(pod["spec"])) > len(str(bare["spec"]))  # the script, the CI variables
    assert pod["spec"]["containers"][0]["image"] == load.cijob("p1")["spec"]["image"]


def test_a_pod_the_simulator_gave_up_on_fails_the_run_but_a_rewatch_does_not() -> None:
    errors = [
        "watch 'cijob.dev/job': TimeoutError()",
        "heartbeat: 500 etcdserver: request timed out",
        "bench-scale-1/s1153-1: TimeoutError()",
        "kubesim stopped: RuntimeError('x')",
    ]
    assert load.gave_up(errors) == errors[2:]
    assert load.gave_up(errors[:2]) == []
