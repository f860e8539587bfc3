"""GET /metrics of the running operator after jobs ran, compared with what happened
(docs/metrics.md), on the real API server with the kubelet simulator."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from integration.conftest import OperatorFactory
from integration.support import CiJobs, Operator
from testground.kubesim import KubeSim
from testground.plans import Behaviour

pytestmark = pytest.mark.cluster

SCRIPT = {"image": "alpine:3.20", "script": ["make test"]}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(op: Operator) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{op.port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_kubesim_metrics_count_what_the_jobs_did(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    # A namespace limit well above the jobs: it must cost them nothing.
    op = start_operator({"maxRunningJobsPerNamespace": 20})
    for i in range(3):
        kubesim.plan_job(namespace, f"ok-{i}", Behaviour.succeeds())
    kubesim.plan_job(namespace, "fails", Behaviour.exits(2))
    kubesim.plan_job(namespace, "flaky", Behaviour.exits(1), attempt=1)
    kubesim.plan_job(namespace, "flaky", Behaviour.succeeds(), attempt=2)
    for i in range(3):
        cijobs.create(namespace, f"ok-{i}", SCRIPT)
    cijobs.create(namespace, "fails", {**SCRIPT, "retry": {"max": 0}})
    cijobs.create(namespace, "flaky", {**SCRIPT, "retry": {"max": 1}})
    cijobs.create(namespace, "refused", {**SCRIPT, "image": None, "script": ["x"]})
    outcomes = {}
    for name in ("ok-0", "ok-1", "ok-2", "fails", "flaky", "refused"):
        status = cijobs.wait_phase(namespace, name)["status"]
        outcomes[name] = (status["phase"], status.get("reason") or "")
    assert outcomes["refused"] == ("Failed", "InvalidSpec")  # no image, no defaults.image
    text, got = scrape(op)

    # Jobs by phase and reason, exactly as their statuses say.
    for phase, reason in set(outcomes.values()):
        n = sum(1 for o in outcomes.values() if o == (phase, reason))
        assert total(got, "cijob_jobs_finished_total", phase=phase, reason=reason) == n
    assert total(got, "cijob_jobs_finished_total") == 6
    # Attempts: one each, two for the retried job, none for the refused one.
    assert total(got, "cijob_attempts_finished_total", phase="Failed", reason="ScriptFailure") == 2
    assert total(got, "cijob_attempts_finished_total", phase="Succeeded") == 4
    assert total(got, "cijob_job_duration_seconds_count") == 6
    assert total(got, "cijob_attempt_duration_seconds_count") == 6
    # Queueing as users feel it: every job that got a pod, its first pod and first build.
    assert total(got, "cijob_job_created_to_pod_created_seconds_count") == 5
    assert total(got, "cijob_job_created_to_running_seconds_count") == 5
    # The API requests: a pod per attempt; a status write per change the simulator's pods
    # show (created, containers waiting, running, ended: at most 4 an attempt) and the refusal.
    assert total(got, "cijob_api_requests_total", verb="POST", resource="pods", code="201") == 6
    patches = total(got, "cijob_api_requests_total", verb="PATCH", resource="cijobs/status")
    assert 6 <= patches <= 4 * 6 + 1
    assert total(got, "cijob_reconcile_duration_seconds_count") >= 6
    assert total(got, "cijob_workqueue_queue_duration_seconds_count") >= 6
    assert ("cijob_workqueue_depth", frozenset()) in got
    assert got[("cijob_leader", frozenset())] == 1
    assert got[("cijob_log_archive_failures_total", frozenset())] == 0
    assert got[("cijob_jobs_held", frozenset())] == 0
    # Few labels: no job, pod or namespace names anywhere.
    for name in (namespace, "ok-0", "flaky-1", "refused"):
        assert name not in text


def test_kubesim_metrics_namespace_label_only_when_asked(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    op = start_operator({"metrics": {"namespaceLabel": True}})
    kubesim.plan_job(namespace, "one", Behaviour.succeeds())
    cijobs.create(namespace, "one", SCRIPT)
    cijobs.wait_phase(namespace, "one")
    _, got = scrape(op)
    assert total(got, "cijob_jobs_finished_total", namespace=namespace, phase="Succeeded") == 1
    off = start_operator({"metrics": {"enabled": False}})
    with pytest.raises(urllib.error.HTTPError) as missing:
        scrape(off)
    assert missing.value.code == 404
