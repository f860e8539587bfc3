"""Every path of the control loop, with the API faked at the `Kube` boundary (docs/lifecycle.md).

The same behaviour is proven against the real API server in tests/integration."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from cijob.config import OperatorConfig
from cijob.kube import Kube, KubeError, NameTaken, NotLeader
from cijob.reconcile import Reconciler
from cijob.render import names

Json = dict[str, Any]
JOB_UID = "job-uid"


def _at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner(uid: str) -> list[Json]:
    return [{"apiVersion": "cijob.dev/v1alpha1", "kind": "CiJob", "uid": uid, "controller": True}]


class FakeKube:
    """Pods and Secrets by name, answered as the API server would; every call recorded."""

    def __init__(self) -> None:
        self.pods: dict[str, Json] = {}
        self.secrets: dict[str, Json] = {}
        self.calls: list[tuple[str, ...]] = []
        self.refusals: list[KubeError] = []
        self.status_fails = False
        self.statuses: list[Json] = []
        self._n = 0

    async def create_pod(self, namespace: str, pod: Json) -> tuple[bool, Json | None]:
        name = pod["metadata"]["name"]
        self.calls.append(("create pod", name))
        if self.refusals:
            raise self.refusals.pop(0)
        if name in self.pods:
            return False, copy.deepcopy(self.pods[name])
        self._n += 1
        created = copy.deepcopy(pod)
        created["metadata"].update(uid=f"pod-uid-{self._n}", creationTimestamp=_at(0))
        created["status"] = {"phase": "Pending"}
        self.pods[name] = created
        return True, copy.deepcopy(created)

    async def get_pod(self, namespace: str, name: str) -> Json | None:
        pod = self.pods.get(name)
        return copy.deepcopy(pod) if pod else None

    async def stop_pod(self, namespace: str, name: str, uid: str, annotations: Json) -> None:
        self.calls.append(("stop pod", name, annotations[names.STOP_REASON_ANNOTATION]))
        pod = self.pods[name]
        assert pod["metadata"]["uid"] == uid
        pod["metadata"].setdefault("annotations", {}).update(annotations)
        pod["spec"]["activeDeadlineSeconds"] = 1

    async def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        self.calls.append(("delete pod", name))
        assert self.pods[name]["metadata"]["uid"] == uid
        self.pods[name]["metadata"]["deletionTimestamp"] = _at(0)

    async def patch_status(self, namespace: str, name: str, uid: str, status: Json) -> None:
        self.calls.append(("status", status["phase"], status.get("reason") or ""))
        if self.status_fails:
            raise KubeError("patch status", 500, b"etcd is away")
        self.statuses.append(status)

    async def apply_secret(self, namespace: str, secret: Json, owner_uid: str) -> None:
        name = secret["metadata"]["name"]
        existing = self.secrets.get(name)
        if existing is not None and existing["metadata"]["ownerReferences"][0]["uid"] != owner_uid:
            raise NameTaken("Secret", existing)
        self.calls.append(("apply secret", name))
        self.secrets[name] = secret

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        return None

    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None:
        return None

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        self.calls.append(("delete job", name))

    async def list_uids(self, path: str, label_selector: str | None = None) -> set[str]:
        return set()

    def writes(self, *kinds: str) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[0] in kinds]


class Harness:
    """A Reconciler over a FakeKube, fed the events a watch would show."""

    def __init__(self, **settings: Any) -> None:
        self.kube = FakeKube()
        self.events: list[tuple[str, str]] = []
        self.r = Reconciler(
            cast(Kube, self.kube),
            OperatorConfig.model_validate({"imagePullGraceSeconds": 0, **settings}),
            lambda body, type_, reason, message: self.events.append((type_, reason)),
            operator_env={},
        )
        self.job: Json = {}

    def apply(self, **spec: Any) -> None:
        self.job = {
            "apiVersion": "cijob.dev/v1alpha1",
            "kind": "CiJob",
            "metadata": {"namespace": "ns", "name": "j", "uid": JOB_UID, "generation": 1},
            "spec": {"image": "alpine:3.20", "script": ["true"], **spec},
        }
        self.run(lambda: self.r.job_event("ADDED", self.job))

    def run(self, *steps: Any) -> None:
        async def go() -> None:
            for step in steps:
                step()
                await self.r.drain()
            self.r.timers.clear()

        asyncio.run(go())

    def pod_is(self, name: str, **status: Any) -> None:
        pod = self.kube.pods[name]
        pod["spec"]["nodeName"] = "node"
        pod["status"] = status
        self.run(lambda: self.r.pod_event("MODIFIED", copy.deepcopy(pod)))

    def pod_gone(self, name: str) -> None:
        pod = self.kube.pods.pop(name)
        self.run(lambda: self.r.pod_event("DELETED", pod))

    def cancel(self) -> None:
        self.job = {**self.job, "spec": {**self.job["spec"], "cancel": True}}
        self.run(lambda: self.r.job_event("MODIFIED", self.job))

    @property
    def status(self) -> Json:
        """The status last written (a finished job leaves the cache)."""
        return self.kube.statuses[-1] if self.kube.statuses else {}


def _waiting(reason: str, started: str | None = None) -> Json:
    return {
        "phase": "Pending",
        "startTime": started or _at(-5),
        "containerStatuses": [
            {"name": "build", "image": "alpine:3.20", "state": {"waiting": {"reason": reason}}}
        ],
    }


def _terminated(code: int) -> Json:
    state = {"terminated": {"exitCode": code, "startedAt": _at(-2), "finishedAt": _at(-1)}}
    return {
        "phase": "Succeeded" if code == 0 else "Failed",
        "startTime": _at(-3),
        "containerStatuses": [{"name": "build", "image": "alpine:3.20", "state": state}],
    }


# -- act only on what the job controls ------------------------------------------------------


def test_a_pod_of_an_earlier_cijob_of_the_same_name_is_waited_for_never_reported() -> None:
    h = Harness()
    old = {
        "metadata": {
            "namespace": "ns",
            "name": "j-1",
            "uid": "old-pod",
            "labels": names.pod_labels("j", 1),
            "ownerReferences": _owner("old-job"),
        }
    }
    h.kube.pods["j-1"] = {**old, "spec": {}, "status": _terminated(0)}
    h.apply()
    assert (h.status["phase"], h.status["reason"]) == ("Pending", "ObjectNameInUse")
    assert "old-job" in h.status["message"]
    waiting = [c for c in h.status["conditions"] if c["type"] == "Waiting"]
    assert waiting and waiting[0]["status"] == "True"
    assert h.kube.writes("stop pod", "delete pod") == []
    # the garbage collector removes the old pod: the job runs its own
    h.pod_gone("j-1")
    assert h.kube.pods["j-1"]["metadata"]["ownerReferences"][0]["uid"] == JOB_UID
    assert (h.status["phase"], h.status["attempt"]) == ("Pending", 1)
    assert [c for c in h.status["conditions"] if c["type"] == "Waiting"] == []
    h.pod_is("j-1", **_terminated(0))
    assert h.status["phase"] == "Succeeded"


def test_a_users_pod_of_the_clashing_name_fails_the_job_and_is_left_alone() -> None:
    h = Harness()
    users = {"namespace": "ns", "name": "j-1", "uid": "users"}
    h.kube.pods["j-1"] = {"metadata": dict(users), "spec": {}, "status": {}}
    h.apply()
    assert (h.status["phase"], h.status["reason"]) == ("Failed", "NameConflict")
    assert "not controlled by any object" in h.status["message"]
    assert h.kube.writes("stop pod", "delete pod") == []
    assert h.kube.pods["j-1"]["metadata"] == users


def test_a_secret_of_the_pull_secrets_name_that_is_not_the_jobs_is_never_merged_into() -> None:
    h = Harness()
    name = "j-registry-credentials"
    foreign = {"metadata": {"name": name, "ownerReferences": _owner("someone")}, "data": {}}
    h.kube.secrets[name] = foreign
    h.apply(variables={"DOCKER_AUTH_CONFIG": '{"auths": {"docker.io": {"auth": "dTpw"}}}'})
    assert (h.status["phase"], h.status["reason"]) == ("Pending", "ObjectNameInUse")
    assert h.kube.secrets[name] is foreign
    assert h.kube.writes("create pod") == []


# -- an ended attempt is stopped --------------------------------------------------------------


def test_an_image_that_never_pulls_is_stopped_before_the_retry_starts() -> None:
    h = Harness()
    h.apply(retry={"max": 1, "when": ["ImagePullFailed"]})
    h.pod_is("j-1", **_waiting("ImagePullBackOff"))
    assert h.kube.writes("stop pod") == [("stop pod", "j-1", "ImagePullFailed")]
    assert (h.status["phase"], h.status["reason"], h.status["attempt"]) == (
        "Pending",
        "Retrying",
        1,
    )
    assert h.status["attempts"][0]["reason"] == "ImagePullFailed"
    assert h.kube.writes("create pod") == [("create pod", "j-1")]  # not yet attempt 2
    assert ("Warning", "Retrying") in h.events
    # the kubelet ends the stopped pod; then, and only then, attempt 2
    h.pod_is("j-1", phase="Failed", reason="DeadlineExceeded", startTime=_at(-5))
    assert h.kube.writes("create pod") == [("create pod", "j-1"), ("create pod", "j-2")]
    assert (h.status["attempt"], h.status["attempts"][0]["reason"]) == (2, "ImagePullFailed")


def test_a_final_failure_stops_the_pod_before_the_status_says_failed() -> None:
    h = Harness()
    h.apply()
    h.pod_is("j-1", **_waiting("CreateContainerConfigError"))
    assert (h.status["phase"], h.status["reason"]) == ("Failed", "InvalidSpec")
    stop = h.kube.calls.index(("stop pod", "j-1", "InvalidSpec"))
    assert stop < h.kube.calls.index(("status", "Failed", "InvalidSpec"))
    # what the kubelet then reports of the stopped pod is not a new outcome
    assert h.kube.pods["j-1"]["metadata"]["annotations"][names.STOP_REASON_ANNOTATION]


def test_a_pod_no_kubelet_started_is_deleted_not_stopped() -> None:
    h = Harness(pendingTimeoutSeconds=1)
    h.apply()
    pod = h.kube.pods["j-1"]
    pod["metadata"]["creationTimestamp"] = _at(-10)
    pod["status"] = {
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1"}
        ],
    }
    h.run(lambda: h.r.pod_event("MODIFIED", copy.deepcopy(pod)))
    assert (h.status["phase"], h.status["reason"]) == ("Failed", "PendingTimeout")
    assert "0/1" in h.status["message"]
    assert h.kube.writes("stop pod", "delete pod") == [("delete pod", "j-1")]


def test_an_unschedulable_pod_says_why_in_the_status() -> None:
    h = Harness()
    h.apply()
    message = "0/2 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}."
    pod = h.kube.pods["j-1"]
    pod["status"] = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
            }
        ],
    }
    h.run(lambda: h.r.pod_event("MODIFIED", copy.deepcopy(pod)))
    assert (h.status["phase"], h.status["reason"], h.status["message"]) == (
        "Pending",
        "Unschedulable",
        message,
    )
    assert any(c["type"] == "Waiting" for c in h.status["conditions"])


def test_cancel_stops_the_running_pod_and_keeps_it() -> None:
    h = Harness()
    h.apply()
    h.pod_is("j-1", phase="Running", startTime=_at(-5))
    h.cancel()
    assert h.kube.writes("stop pod", "delete pod") == [("stop pod", "j-1", "Canceled")]
    assert h.status["phase"] == "Canceled"
    assert "j-1" in h.kube.pods


# -- each attempt has its own clock ----------------------------------------------------------


def test_a_retry_after_a_long_first_attempt_has_its_whole_timeout() -> None:
    h = Harness()
    h.apply(timeout="60s", retry={"max": 1})
    h.pod_is("j-1", **_terminated(1))
    assert h.status["attempt"] == 2
    # the job started long ago; its second attempt only now
    h.r.cache.written[JOB_UID] = {**h.r.cache.status(h.job), "startTime": _at(-3600)}
    second_start = _at(-1)
    h.pod_is("j-2", phase="Running", startTime=second_start)
    assert (h.status["phase"], h.status["attemptStartTime"]) == ("Running", second_start)
    assert h.kube.writes("stop pod") == []
    # past the attempt's own limit the backstop ends it
    h.pod_is("j-2", phase="Running", startTime=_at(-100))
    assert (h.status["phase"], h.status["reason"]) == ("Failed", "Timeout")
    assert h.kube.writes("stop pod") == [("stop pod", "j-2", "Timeout")]


# -- a job that cannot start says why ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        (422, 'Pod "j-1" is invalid: spec.containers[0].resources.requests: Invalid', "PodInvalid"),
        (
            403,
            'pods "j-1" is forbidden: violates PodSecurity "restricted:latest"',
            "AdmissionDenied",
        ),
    ],
)
def test_refusals_retrying_cannot_fix_fail_the_job_with_the_servers_message(
    code: int, message: str, reason: str
) -> None:
    h = Harness()
    h.kube.refusals.append(KubeError("create pod j-1", code, message))
    h.apply()
    assert (h.status["phase"], h.status["reason"]) == ("Failed", reason)
    assert message in h.status["message"]
    assert ("Warning", reason) in h.events


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        (403, 'pods "j-1" is forbidden: exceeded quota: q, requested: pods=1', "QuotaExceeded"),
        (
            403,
            'pods "j-1" is forbidden: error looking up service account ns/ci: '
            'serviceaccount "ci" not found',
            "ServiceAccountMissing",
        ),
        (429, "too many requests", "APIUnavailable"),
        (503, "etcd leader changed", "APIUnavailable"),
        (0, "no answer: timeout", "APIUnavailable"),
    ],
)
def test_refusals_the_cluster_may_lift_keep_the_job_pending_then_it_starts(
    code: int, message: str, reason: str
) -> None:
    h = Harness()
    h.kube.refusals.append(KubeError("create pod j-1", code, message))
    h.apply()
    assert (h.status["phase"], h.status["reason"], h.status["message"]) == (
        "Pending",
        reason,
        message,
    )
    assert [c["reason"] for c in h.status["conditions"] if c["type"] == "Waiting"] == [reason]
    assert h.events == [("Warning", reason)]
    h.run(lambda: h.r.queue.add(("ns", "j")))  # the backoff timer fires
    assert (h.status["phase"], h.status["attempt"]) == ("Pending", 1)


def test_a_job_that_waits_too_long_fails_with_a_reason_of_its_own() -> None:
    h = Harness(pendingTimeoutSeconds=1)
    h.kube.refusals += [KubeError("create pod j-1", 403, "exceeded quota: q")] * 2
    h.apply()
    status = h.r.cache.status(h.job)
    waiting = next(c for c in status["conditions"] if c["type"] == "Waiting")
    waiting["lastTransitionTime"] = _at(-10)
    h.run(lambda: h.r.queue.add(("ns", "j")))
    assert (h.status["phase"], h.status["reason"]) == ("Failed", "PendingTimeout")
    assert "exceeded quota" in h.status["message"]


# -- events once, after the write --------------------------------------------------------------


def test_no_event_is_posted_for_a_status_write_that_failed() -> None:
    h = Harness()
    h.apply(retry={"max": 1})
    h.kube.status_fails = True
    h.pod_is("j-1", **_terminated(1))
    assert ("Warning", "Retrying") not in h.events
    h.kube.status_fails = False
    h.run(lambda: h.r.queue.add(("ns", "j")))
    assert h.events.count(("Warning", "Retrying")) == 1


def test_a_replica_that_lost_the_lease_does_not_retry_its_refused_writes() -> None:
    h = Harness()

    async def not_leader(*_: Any) -> None:
        raise NotLeader("PATCH status")

    h.kube.patch_status = not_leader  # type: ignore[method-assign]
    h.apply()
    assert list(h.r.timers) == []
    assert h.r.backoff.failures == {}


# -- missed deletions ------------------------------------------------------------------------


def test_a_resync_drops_jobs_and_pods_a_watch_gap_hid_the_deletion_of() -> None:
    h = Harness()
    h.apply(timeout="1h")
    h.pod_is("j-1", phase="Running", startTime=_at(-1))
    assert h.r.cache.jobs and h.r.cache.pods

    async def resync() -> bool:
        h.r.timers.schedule(("ns", "j"), 3600)
        await h.r.resync()  # the fake API server lists nothing
        return ("ns", "j") in h.r.timers

    assert asyncio.run(resync()) is False
    assert (h.r.cache.jobs, h.r.cache.pods, h.r.cache.written) == ({}, {}, {})


def test_an_attempts_pod_deleted_before_its_status_landed_is_not_made_twice() -> None:
    h = Harness()
    h.kube.status_fails = True
    h.apply()  # the pod is made; the status write that would say so fails
    assert h.kube.writes("create pod") == [("create pod", "j-1")]
    h.kube.status_fails = False
    h.pod_gone("j-1")  # deleted meanwhile, by someone else
    assert h.kube.writes("create pod") == [("create pod", "j-1")]
    assert (h.status["phase"], h.status["reason"]) == ("Failed", "PodDeleted")


# -- writes per job (make bench's figure, by construction) ----------------------------------


def _running(services: list[Json] | None = None) -> Json:
    return {
        "phase": "Running",
        "startTime": _at(-3),
        "containerStatuses": [
            {"name": "build", "image": "alpine:3.20", "state": {"running": {"startedAt": _at(-2)}}}
        ],
        "initContainerStatuses": services or [],
    }


def test_a_job_costs_the_same_writes_with_services_that_never_fail() -> None:
    # a port of its own: no registry is asked (one that cannot be read is a Normal Event)
    db = {"name": "svc:1", "alias": "db", "variables": {"HEALTHCHECK_TCP_PORT": "5432"}}
    for services in (None, [db]):
        h = Harness()
        h.apply(**({"services": services} if services else {}))
        sidecar = [{"name": "db", "restartCount": 0, "started": True, "state": {"running": {}}}]
        for _ in range(3):  # the same observation again and again: no write
            h.pod_is("j-1", **_running(sidecar if services else None))
        h.pod_is("j-1", **_terminated(0))
        assert len(h.kube.writes("status")) == 3, h.kube.calls  # Pending, Running, end
        assert h.kube.writes("create pod") == [("create pod", "j-1")]
        assert not any(reason.startswith("Service") for _, reason in h.events), h.events


def test_a_service_restart_is_one_write_and_one_event() -> None:
    h = Harness()
    h.apply(services=[{"name": "svc:1", "alias": "db", "variables": {"HEALTHCHECK_TCP_PORT": "1"}}])
    ok = {"name": "db", "restartCount": 0, "started": True, "state": {"running": {}}}
    oom = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": _at(-1)}}
    restarted = {**ok, "restartCount": 1, "lastState": oom}
    h.pod_is("j-1", **_running([ok]))
    before = len(h.kube.writes("status"))
    h.pod_is("j-1", **_running([restarted]))
    h.pod_is("j-1", **_running([restarted]))
    assert len(h.kube.writes("status")) == before + 1
    assert h.status["services"][0]["lastTerminationReason"] == "OOMKilled"
    assert [r for _, r in h.events].count("ServiceFailed") == 1
