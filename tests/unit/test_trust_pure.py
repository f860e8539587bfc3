"""The pure parts of the trust rules: ownership, refusals, limits, backoff, the cache's pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cijob.cache import GONE, Cache
from cijob.config import OperatorConfig
from cijob.job import job_from_body
from cijob.lifecycle import status as st
from cijob.lifecycle.limits import DEADLINE_SLACK_SECONDS, within_limits
from cijob.lifecycle.observe import Observation, observe_pod
from cijob.lifecycle.refusals import classify
from cijob.ownership import held_by_a_cijob, is_controlled_by
from cijob.render import names
from cijob.render.pod import get_pod
from cijob.timers import Backoff

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def _stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ref(uid: str, kind: str = "CiJob", controller: bool = True) -> dict[str, object]:
    return {"apiVersion": "cijob.dev/v1alpha1", "kind": kind, "uid": uid, "controller": controller}


def test_only_the_controller_reference_with_the_jobs_uid_makes_an_object_the_jobs() -> None:
    assert is_controlled_by({"metadata": {"ownerReferences": [_ref("u")]}}, "u")
    assert not is_controlled_by({"metadata": {"ownerReferences": [_ref("u")]}}, "other")
    assert not is_controlled_by(
        {"metadata": {"ownerReferences": [_ref("u", controller=False)]}}, "u"
    )
    assert not is_controlled_by({"metadata": {}}, "u")
    assert not is_controlled_by({"metadata": {"ownerReferences": [_ref("")]}}, "")


def test_an_earlier_cijobs_object_is_told_from_anything_else() -> None:
    assert held_by_a_cijob({"metadata": {"ownerReferences": [_ref("old")]}})
    assert not held_by_a_cijob({"metadata": {"ownerReferences": [_ref("rs", kind="ReplicaSet")]}})
    assert not held_by_a_cijob({"metadata": {}})


@pytest.mark.parametrize(
    ("status", "message", "reason", "transient"),
    [
        (422, "spec.containers[0].resources.requests: Invalid value", "PodInvalid", False),
        (400, "bad request", "PodInvalid", False),
        (403, 'violates PodSecurity "baseline:latest": privileged', "AdmissionDenied", False),
        (403, "maximum cpu usage per Container is 1", "AdmissionDenied", False),
        (403, "exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1",
         "QuotaExceeded", True),
        (403, 'error looking up service account ns/ci: serviceaccount "ci" not found',
         "ServiceAccountMissing", True),
        (403, 'User "system:serviceaccount:x:y" cannot create resource "pods"',
         "OperatorForbidden", True),
        (404, 'namespaces "gone" not found', "NamespaceNotFound", True),
        (429, "too many requests", "APIUnavailable", True),
        (500, "etcdserver: request timed out", "APIUnavailable", True),
        (503, "", "APIUnavailable", True),
        (0, "no answer", "APIUnavailable", True),
    ],
)  # fmt: skip
def test_refusals_are_classified_by_whether_the_cluster_may_lift_them(
    status: int, message: str, reason: str, transient: bool
) -> None:
    refusal = classify(status, message)
    assert (refusal.reason, refusal.transient) == (reason, transient)
    assert refusal.message


def _pod(start_ago: float | None, created_ago: float = 0) -> dict[str, object]:
    status = {} if start_ago is None else {"startTime": _stamp(start_ago)}
    return {"metadata": {"creationTimestamp": _stamp(created_ago)}, "status": status}


def test_an_attempts_timeout_counts_from_its_own_pods_start() -> None:
    running = Observation("Running")
    inside = within_limits(_pod(start_ago=50), running, 60, 1800, NOW)
    assert inside.phase == "Running"
    assert inside.recheck_after == pytest.approx(60 + DEADLINE_SLACK_SECONDS - 50)
    past = within_limits(_pod(start_ago=60 + DEADLINE_SLACK_SECONDS), running, 60, 1800, NOW)
    assert (past.phase, past.reason) == ("Failed", "Timeout")


def test_a_pod_no_kubelet_started_may_wait_only_the_pending_timeout() -> None:
    pending = Observation("Pending", "Unschedulable", "0/3 nodes are available")
    waiting = within_limits(_pod(None, created_ago=10), pending, 60, 100, NOW)
    assert waiting.reason == "Unschedulable"
    assert waiting.recheck_after == pytest.approx(90)
    late = within_limits(_pod(None, created_ago=100), pending, 60, 100, NOW)
    assert (late.phase, late.reason) == ("Failed", "PendingTimeout")
    assert "0/3 nodes are available" in (late.message or "")


def test_terminal_observations_pass_through_the_limits() -> None:
    done = Observation("Succeeded", exit_code=0)
    assert within_limits(_pod(start_ago=10_000), done, 60, 1, NOW) is done


def test_backoff_doubles_per_key_up_to_its_maximum_and_forgets() -> None:
    b: Backoff[str] = Backoff(first=0.5, maximum=4.0, clock=lambda: 0.0)
    assert [b.when("a") for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert b.when("b") == 0.5
    b.forget("a")
    assert b.when("a") == 0.5


def test_backoff_shares_one_token_bucket_among_all_keys() -> None:
    b: Backoff[int] = Backoff(first=0.0, rate=10.0, burst=3, clock=lambda: 0.0)
    delays = [b.when(k) for k in range(5)]
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3:] == pytest.approx([0.1, 0.2])


def _job(uid: str, name: str = "j") -> dict[str, object]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": uid}, "status": {}}


def _job_pod(owner: str, uid: str, name: str = "j") -> dict[str, object]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": names.pod_name(name, 1),
            "uid": uid,
            "labels": names.pod_labels(name, 1),
            "ownerReferences": [_ref(owner)],
        }
    }


def test_the_cache_gives_a_job_only_its_own_pod_and_remembers_whose_pod_was_deleted() -> None:
    c = Cache()
    c.job_seen("ADDED", _job("new"))
    c.pod_seen("ADDED", _job_pod("old", "p-old"))
    assert c.attempt_pod(("ns", "j"), "new", 1) is None
    c.pod_seen("DELETED", _job_pod("old", "p-old"))
    assert c.attempt_pod(("ns", "j"), "new", 1) is None  # the old job's deletion, not ours
    c.pod_seen("ADDED", _job_pod("new", "p-new"))
    assert c.attempt_pod(("ns", "j"), "new", 1)["metadata"]["uid"] == "p-new"  # type: ignore[index]
    c.pod_seen("DELETED", _job_pod("new", "p-new"))
    assert c.attempt_pod(("ns", "j"), "new", 1) is GONE


def test_a_resync_prunes_only_what_was_held_before_the_listing_and_is_not_listed() -> None:
    c = Cache()
    c.job_seen("ADDED", _job("gone", "a"))
    c.job_seen("ADDED", _job("kept", "b"))
    c.pod_seen("ADDED", _job_pod("gone", "p-a", "a"))
    held = c.snapshot()
    c.job_seen("ADDED", _job("newer", "c"))  # seen while the listing was on its way
    dropped = c.prune(held, listed_jobs={"kept"}, listed_pods=set())
    assert dropped == [("ns", "a")]
    assert set(c.jobs) == {("ns", "b"), ("ns", "c")}
    assert c.pods == {}


def _failed_pod(message: str | None, code: int = 1) -> dict[str, object]:
    term: dict[str, object] = {"exitCode": code, "reason": "Error", "finishedAt": _stamp(0)}
    if message is not None:
        term["message"] = message
    return {
        "metadata": {"name": "j-1"},
        "spec": {"containers": [{"name": "build", "image": "alpine"}]},
        "status": {
            "phase": "Failed",
            "startTime": _stamp(10),
            "containerStatuses": [{"name": "build", "state": {"terminated": term}}],
        },
    }


def test_a_failed_scripts_last_lines_reach_the_status_capped_at_2_kib() -> None:
    obs = observe_pod(_failed_pod("$ make test\nerror: 3 tests failed\n"), NOW, 60)
    assert obs.log_tail == "$ make test\nerror: 3 tests failed\n"
    status = st.from_observation({}, obs, 1, NOW)
    assert status["logTail"] == obs.log_tail
    assert st.attempt_record({"attempt": 1}, obs)["logTail"] == obs.log_tail
    long = observe_pod(_failed_pod("x" * 5000 + "END"), NOW, 60)
    assert long.log_tail is not None and len(long.log_tail.encode()) == 2048
    assert long.log_tail.endswith("END")
    assert observe_pod(_failed_pod(None), NOW, 60).log_tail is None


def test_the_build_container_keeps_its_logs_end_as_termination_message() -> None:
    job = job_from_body(
        {"metadata": {"name": "j", "namespace": "ns", "uid": "u"}, "spec": {"script": ["true"]}}
    )
    pod = get_pod(job, 1, OperatorConfig.model_validate({"defaults": {"image": "alpine"}}))
    assert pod["spec"]["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_the_grace_period_of_a_job_with_after_script_covers_its_limit() -> None:
    body = {"metadata": {"name": "j", "namespace": "ns", "uid": "u"}, "spec": {"script": ["x"]}}
    config = OperatorConfig.model_validate(
        {"defaults": {"image": "alpine"}, "afterScriptTimeoutSeconds": 120}
    )
    assert "terminationGracePeriodSeconds" not in get_pod(job_from_body(body), 1, config)["spec"]
    body["spec"] = {"script": ["x"], "afterScript": ["cleanup"]}
    pod = get_pod(job_from_body(body), 1, config)
    assert pod["spec"]["terminationGracePeriodSeconds"] == 130
