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
        self.jobs: dict[str, Json] = {}  # what get_job answers
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

    async def get_job(self, namespace: str, name: str) -> Json | None:
        self.calls.append(("read job", name))
        return copy.deepcopy(self.jobs.get(name))

    async def release_pod(self, namespace: str, name: str, uid: str) -> None:
        """Removes the tracking finalizer; a deleted pod then goes, as the API server does."""
        self.calls.append(("release pod", name))
        pod = self.pods.get(name)
        if pod is None or pod["metadata"]["uid"] != uid:
            return
        pod["metadata"]["finalizers"].remove(names.TRACKING_FINALIZER)
        if pod["metadata"].get("deletionTimestamp") and not pod["metadata"]["finalizers"]:
            del self.pods[name]

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

    def define(self, **spec: Any) -> Json:
        """The job, not yet shown to the operator."""
        self.job = {
            "apiVersion": "cijob.dev/v1alpha1",
            "kind": "CiJob",
            "metadata": {"namespace": "ns", "name": "j", "uid": JOB_UID, "generation": 1},
            "spec": {"image": "alpine:3.20", "script": ["true"], **spec},
        }
        return self.job

    def apply(self, **spec: Any) -> None:
        self.define(**spec)
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


# -- one pod per attempt: the tracking finalizer -------------------------------------------


def _deleted(h: Harness, name: str, **status: Any) -> Json:
    """The pod deleted (kept by its finalizer), as the watch shows it."""
    pod = h.kube.pods[name]
    pod["metadata"]["deletionTimestamp"] = _at(0)
    pod["spec"]["nodeName"] = "node"
    pod["status"] = status
    seen = copy.deepcopy(pod)
    h.run(lambda: h.r.pod_event("MODIFIED", copy.deepcopy(seen)))
    return seen


def _made_by_a_lost_leader(h: Harness, name: str, attempt: int) -> Json:
    """The pod a leader created for `attempt` before it died, its status write never made."""
    from cijob.config import OperatorConfig as Config
    from cijob.job import job_from_body
    from cijob.render.pod import get_pod

    body = {**h.job, "metadata": {**h.job["metadata"], "name": "j"}}
    pod = copy.deepcopy(dict(get_pod(job_from_body(body), attempt, Config())))
    pod["metadata"].update(uid="lost-pod", deletionTimestamp=_at(0))
    pod["spec"]["nodeName"] = "node"
    killed = {"terminated": {"exitCode": 143, "startedAt": _at(-3), "finishedAt": _at(-1)}}
    pod["status"] = {
        "phase": "Failed",
        "startTime": _at(-3),
        "containerStatuses": [{"name": "build", "image": "alpine:3.20", "state": killed}],
    }
    h.kube.pods[name] = pod
    return pod


def test_every_pod_is_created_with_the_tracking_finalizer_and_a_live_one_keeps_it() -> None:
    h = Harness()
    h.apply()
    assert h.kube.pods["j-1"]["metadata"]["finalizers"] == [names.TRACKING_FINALIZER]
    h.pod_is("j-1", **_terminated(0))
    assert h.status["phase"] == "Succeeded"
    # a pod not deleted costs no write: pod, Pending, the end (Running skipped: already done)
    assert [c[0] for c in h.kube.writes("create pod", "status", "release pod")] == [
        "create pod",
        "status",
        "status",
    ]


def test_a_pod_a_lost_leader_made_and_that_was_deleted_is_recorded_and_retried() -> None:
    h = Harness()
    h.define(retry={"max": 1})
    lost = _made_by_a_lost_leader(h, "j-1", 1)
    h.kube.jobs["j"] = h.job
    # the pod is seen before its job (a replica starting): it is held, not let go
    h.run(lambda: h.r.pod_event("ADDED", copy.deepcopy(lost)))
    assert h.kube.writes("release pod") == []
    h.run(lambda: h.r.job_event("ADDED", h.job))
    first = h.kube.statuses[0]
    assert (first["attempt"], first["podName"]) == (1, "j-1")
    h.run(lambda: h.r.queue.add(("ns", "j")))  # the watch shows the status back
    # the create of attempt 1 found the lost pod (409, the job's own): never made again
    assert h.kube.writes("create pod") == [("create pod", "j-1"), ("create pod", "j-2")]
    assert h.kube.pods["j-2"]["metadata"]["uid"] != "lost-pod"
    assert (h.status["attempt"], h.status["attempts"][0]["reason"]) == (2, "PodDeleted")
    # released only once its outcome is in the status
    release = h.kube.calls.index(("release pod", "j-1"))
    assert release > max(i for i, c in enumerate(h.kube.calls) if c[0] == "status")
    assert "j-1" not in h.kube.pods


def test_a_lost_leaders_pod_already_in_the_cache_is_recorded_without_a_create() -> None:
    h = Harness()
    h.define()
    lost = _made_by_a_lost_leader(h, "j-1", 1)

    def seen() -> None:
        h.r.job_event("ADDED", h.job)
        h.r.pod_event("ADDED", copy.deepcopy(lost))

    h.run(seen)
    h.run(lambda: h.r.queue.add(("ns", "j")))  # the watch shows the status back
    assert h.kube.writes("create pod") == []
    assert (h.status["phase"], h.status["reason"], h.status["attempt"]) == (
        "Failed",
        "PodDeleted",
        1,
    )
    assert h.kube.writes("release pod") == [("release pod", "j-1")]


def test_a_running_pod_deleted_is_released_after_its_outcome_is_written() -> None:
    h = Harness()
    h.apply()
    h.pod_is("j-1", phase="Running", startTime=_at(-5))
    _deleted(h, "j-1", phase="Running", startTime=_at(-5))
    assert (h.status["phase"], h.status["reason"]) == ("Failed", "PodDeleted")
    failed = h.kube.calls.index(("status", "Failed", "PodDeleted"))
    assert h.kube.calls.index(("release pod", "j-1")) > failed
    assert h.kube.writes("read job") == []  # the job's status was at hand


def test_a_retry_waits_for_a_held_pod_until_it_is_released_and_gone() -> None:
    h = Harness()
    h.apply(retry={"max": 1})
    held = _deleted(h, "j-1", phase="Running", startTime=_at(-5))
    # the attempt is recorded, its pod released; the next waits until the pod has gone
    assert (h.status["phase"], h.status["reason"]) == ("Pending", "Retrying")
    assert h.kube.writes("release pod") == [("release pod", "j-1")]
    assert h.kube.writes("create pod") == [("create pod", "j-1")]
    assert "j-1" not in h.kube.pods
    h.run(lambda: h.r.pod_event("DELETED", held))
    assert h.kube.writes("create pod") == [("create pod", "j-1"), ("create pod", "j-2")]


def test_pods_of_a_deleted_job_are_released_pods_not_the_jobs_never() -> None:
    h = Harness()
    h.apply()
    h.pod_is("j-1", **_terminated(0))
    h.run(lambda: h.r.job_event("DELETED", h.job))
    # the garbage collector deletes its pod; an earlier CiJob's, and a user's, alike
    earlier = copy.deepcopy(h.kube.pods["j-1"])
    earlier["metadata"].update(name="j-7", uid="earlier", ownerReferences=_owner("gone-job"))
    h.kube.pods["j-7"] = earlier
    users = copy.deepcopy(earlier)
    users["metadata"].update(name="j-8", uid="users", ownerReferences=[])
    h.kube.pods["j-8"] = users
    mine = copy.deepcopy(earlier)
    mine["metadata"].update(name="j-9", uid="untracked", finalizers=["example.com/keep"])
    h.kube.pods["j-9"] = mine
    for name in ("j-1", "j-7", "j-8", "j-9"):
        _deleted(h, name, **_terminated(0))
    assert h.kube.writes("release pod") == [("release pod", "j-1"), ("release pod", "j-7")]
    assert h.kube.writes("read job") != []  # the job was gone from the cache: asked


def test_a_held_pod_of_a_live_job_that_the_cache_does_not_hold_waits_for_its_record() -> None:
    h = Harness()
    h.job = {
        "metadata": {"namespace": "ns", "name": "j", "uid": JOB_UID},
        "spec": {"image": "alpine:3.20", "script": ["true"]},
        "status": {"phase": "Running", "attempt": 1, "podName": "j-1"},
    }
    h.kube.jobs["j"] = h.job
    lost = _made_by_a_lost_leader(h, "j-2", 2)
    lost["metadata"]["labels"][names.ATTEMPT_LABEL] = "2"
    h.run(lambda: h.r.pod_event("MODIFIED", copy.deepcopy(lost)))
    assert h.kube.writes("release pod") == []
    # a foreground deletion of the job waits for its pods: they go
    h.kube.jobs["j"] = {**h.job, "metadata": {**h.job["metadata"], "deletionTimestamp": _at(0)}}
    h.run(lambda: h.r.pod_event("MODIFIED", copy.deepcopy(lost)))
    assert h.kube.writes("release pod") == [("release pod", "j-2")]


def test_a_timeout_by_the_clock_reads_the_pod_first_a_lagging_watch_is_not_believed() -> None:
    h = Harness()
    h.apply(timeout="10s")
    h.pod_is("j-1", phase="Running", startTime=_at(-5))
    assert h.status["phase"] == "Running"
    # the API server has the pod Succeeded; the watch still shows it running, long past its time
    stale = copy.deepcopy(h.kube.pods["j-1"])
    stale["status"] = {"phase": "Running", "startTime": _at(-100)}
    h.kube.pods["j-1"]["status"] = {**_terminated(0), "startTime": _at(-100)}
    h.run(lambda: h.r.pod_event("MODIFIED", stale))
    assert h.status["phase"] == "Succeeded"
    assert h.kube.writes("stop pod", "delete pod") == []
