"""The metrics' pure parts: what a status write says happened, request labels, exposition."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cijob.metrics import (
    Metrics,
    ended_attempts,
    ended_job,
    first_build_running,
    verb_and_resource,
)

T0, T1, T2 = "2026-12-01T10:00:00Z", "2026-12-01T10:00:10Z", "2026-12-01T10:01:10Z"
BODY = {"metadata": {"namespace": "team-a", "name": "rspec-7", "creationTimestamp": T0}}


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.expose().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_a_job_that_ends_is_one_finished_job_and_one_finished_attempt() -> None:
    old = {"phase": "Running", "attempt": 1, "startTime": T0}
    new = {
        "phase": "Failed", "reason": "ScriptFailure", "attempt": 1, "startTime": T0,
        "attemptStartTime": T1, "completionTime": T2, "exitCode": 1,
    }  # fmt: skip
    assert ended_job(old, new) == ("Failed", "ScriptFailure", 70.0)
    assert ended_attempts(old, new) == [("Failed", "ScriptFailure", 60.0)]
    assert ended_job(new, new) is None and ended_attempts(new, new) == []


def test_a_retry_ends_an_attempt_not_the_job() -> None:
    record = {"attempt": 1, "phase": "Failed", "reason": "PodEvicted", "startTime": T1}
    old = {"phase": "Running", "attempt": 1}
    new = {"phase": "Pending", "attempt": 2, "attempts": [record]}
    assert ended_job(old, new) is None
    assert ended_attempts(old, new) == [("Failed", "PodEvicted", None)]
    # the job then succeeds with attempt 2: only that attempt is new
    done = {**new, "phase": "Succeeded", "completionTime": T2, "attemptStartTime": T2}
    assert ended_attempts(new, done) == [("Succeeded", "", 0.0)]


def test_a_job_refused_before_any_pod_ends_no_attempt() -> None:
    new = {"phase": "Failed", "reason": "InvalidSpec", "startTime": T0, "completionTime": T0}
    assert ended_attempts({}, new) == []
    assert ended_job({}, new) == ("Failed", "InvalidSpec", 0.0)


def test_the_first_build_running_is_seen_once() -> None:
    pending = {"phase": "Pending", "attempt": 1}
    assert first_build_running(pending, {"phase": "Running", "attempt": 1})
    assert not first_build_running({"phase": "Running", "attempt": 1}, {"phase": "Running"})
    # finished before the operator looked: it ran if it has an exit code
    assert first_build_running(pending, {"phase": "Succeeded", "attempt": 1, "exitCode": 0})
    assert not first_build_running(pending, {"phase": "Failed", "attempt": 1})
    assert not first_build_running(
        {"phase": "Pending", "attempt": 2}, {"phase": "Running", "attempt": 2}
    )


def test_requests_are_labelled_by_verb_and_resource_never_a_name() -> None:
    assert verb_and_resource("GET", "/api/v1/namespaces/a/pods?limit=500") == ("LIST", "pods")
    assert verb_and_resource("GET", "/api/v1/namespaces/a/pods/build-1") == ("GET", "pods")
    assert verb_and_resource("GET", "/api/v1/pods?limit=500&labelSelector=x") == ("LIST", "pods")
    assert verb_and_resource("POST", "/api/v1/namespaces/a/events") == ("POST", "events")
    path = "/apis/cijob.dev/v1alpha1/namespaces/a/cijobs/build/status"
    assert verb_and_resource("PATCH", path) == ("PATCH", "cijobs/status")
    assert verb_and_resource("GET", "/apis/cijob.dev/v1alpha1/cijobs?limit=5") == ("LIST", "cijobs")


def test_exposition_has_the_fixed_names_and_no_job_names() -> None:
    m = Metrics()
    m.watch(lambda: 3, lambda: 0)
    old = {"phase": "Pending", "attempt": 1, "startTime": T0}
    new = {**old, "phase": "Succeeded", "completionTime": T2, "exitCode": 0}
    m.status_written(BODY, old, new, datetime(2026, 12, 1, 10, 1, 10, tzinfo=UTC))
    m.api_request("POST", "/api/v1/namespaces/team-a/pods", 201)
    got = samples(m)
    assert got[("cijob_jobs_finished_total", (("phase", "Succeeded"), ("reason", "")))] == 1
    assert got[("cijob_workqueue_depth", ())] == 3
    assert got[("cijob_job_created_to_running_seconds_sum", ())] == 70
    assert (
        got[("cijob_api_requests_total", (("code", "201"), ("resource", "pods"), ("verb", "POST")))]
        == 1
    )
    text = m.expose().decode()
    assert "rspec-7" not in text and "team-a" not in text
    assert "cijob_log_archive_failures_total 0.0" in text


def test_the_namespace_label_only_when_asked_and_nothing_when_disabled() -> None:
    m = Metrics(namespace_label=True)
    new = {"phase": "Failed", "reason": "Timeout", "startTime": T0, "completionTime": T2}
    m.status_written(BODY, {"phase": "Running"}, new, datetime.now(UTC))
    key = (("namespace", "team-a"), ("phase", "Failed"), ("reason", "Timeout"))
    assert samples(m)[("cijob_jobs_finished_total", key)] == 1
    off = Metrics(enabled=False)
    off.status_written(BODY, {"phase": "Running"}, new, datetime.now(UTC))
    assert "cijob_jobs_finished_total{" not in off.expose().decode()


def _names() -> set[str]:
    """Every cijob_* metric name, as exposed (counters with their _total)."""
    families = text_string_to_metric_families(Metrics().expose().decode())
    out = set()
    for f in families:
        if f.name.startswith("cijob_"):
            out.add(f.name + ("_total" if f.type == "counter" else ""))
    return out


def test_docs_list_every_metric_and_the_dashboard_uses_only_those() -> None:
    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "metrics.md").read_text()
    names = _names()
    assert {"cijob_jobs_finished_total", "cijob_workqueue_depth"} <= names
    assert [n for n in sorted(names) if f"`{n}`" not in docs] == []
    documented = set(re.findall(r"^\| `(cijob_[a-z_]+)`", docs, re.M))
    assert documented == names
    dashboard = json.loads((root / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {
        re.sub(r"_(bucket|count|sum)$", "", m)
        for e in exprs
        for m in re.findall(r"cijob_[a-z_]+", e)
    }
    assert used <= names and len(used) >= 10
