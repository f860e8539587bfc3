"""What a job's pod, as the kubelet writes its status, says about the attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cijob.lifecycle.observe import Observation, images, observe_pod, parse_time

Json = dict[str, Any]
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
GRACE = 60.0
RUBY_ID = "docker.io/library/ruby@sha256:" + "1" * 64
PG_ID = "docker.io/library/postgres@sha256:" + "2" * 64
NO_SH = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
    "runc create failed: unable to start container process: error during container init: "
    'exec: "sh": executable file not found in $PATH: unknown'
)
NO_BIN_SH = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
    "runc create failed: unable to start container process: error during container init: "
    'exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown'
)
PULL_DENIED = (
    'failed to pull and unpack image "docker.io/library/nope:1": failed to resolve reference '
    '"docker.io/library/nope:1": pull access denied, repository does not exist or may require '
    "authorization: server message: insufficient_scope: authorization failed"
)
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
EVICTED_MESSAGE = (
    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 90Mi. "
    "Container build was using 1Gi, request is 0, has larger consumption of memory. "
)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def now(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- container states, as core/v1 ContainerState -----------------------------------------------


def waiting(reason: str, message: str | None = None) -> Json:
    w: Json = {"reason": reason}
    if message:
        w["message"] = message
    return {"waiting": w}


def running(started: float = 5) -> Json:
    return {"running": {"startedAt": at(started)}}


def terminated(
    exit_code: int,
    reason: str | None = None,
    message: str | None = None,
    started: float = 5,
    finished: float = 30,
) -> Json:
    t: Json = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": at(started),
        "finishedAt": at(finished),
        "containerID": "containerd://" + "c" * 64,
    }
    if message:
        t["message"] = message
    return {"terminated": t}


def container_status(name: str, image: str, image_id: str, state: Json) -> Json:
    """One containerStatuses entry as the kubelet writes it: no container ID and no imageID
    before the runtime has created the container."""
    created = "waiting" not in state
    status: Json = {
        "name": name,
        "state": state,
        "lastState": {},
        "ready": "running" in state,
        "restartCount": 0,
        "image": image,
        "imageID": image_id if created else "",
        "started": "running" in state,
    }
    if created:
        status["containerID"] = "containerd://" + name.encode().hex().ljust(64, "0")
    return status


def make_pod(
    phase: str = "Running",
    build: Json | None = None,
    db: Json | None = None,
    *,
    reason: str | None = None,
    message: str | None = None,
    conditions: list[Json] | None = None,
    deletion: str | None = None,
    start: float | None = 1,
    with_service: bool = True,
) -> Json:
    """A job pod (build `ruby:2.6`, sidecar `db` from `postgres:11.7`) and its status."""
    spec: Json = {
        "restartPolicy": "Never",
        "containers": [{"name": "build", "image": "ruby:2.6"}],
    }
    if with_service:
        spec["initContainers"] = [
            {"name": "db", "image": "postgres:11.7", "restartPolicy": "Always"}
        ]
    meta: Json = {
        "name": "rspec-1",
        "namespace": "team-a",
        "uid": "pod-uid",
        "creationTimestamp": at(0),
        "labels": {"cijob.dev/job": "rspec", "cijob.dev/attempt": "1"},
    }
    if deletion:
        meta["deletionTimestamp"] = deletion
        meta["deletionGracePeriodSeconds"] = 30
    status: Json = {
        "phase": phase,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": at(0)},
            *(conditions or []),
        ],
        "qosClass": "BestEffort",
    }
    if start is not None:
        status["startTime"] = at(start)
        status["hostIP"] = "10.0.0.5"
        status["podIP"] = "10.244.0.17"
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if build is not None:
        status["containerStatuses"] = [
            container_status("build", "docker.io/library/ruby:2.6", RUBY_ID, build)
        ]
    if db is not None and with_service:
        status["initContainerStatuses"] = [
            container_status("db", "docker.io/library/postgres:11.7", PG_ID, db)
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def disruption(reason: str, message: str) -> Json:
    return {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": at(20),
    }


def observe(pod: Json, seconds: float = 40) -> Observation:
    return observe_pod(pod, now(seconds), GRACE)


BOTH_IMAGES = [
    {"container": "build", "image": "ruby:2.6", "imageID": RUBY_ID},
    {"container": "db", "image": "postgres:11.7", "imageID": PG_ID},
]


# -- before and while it runs ----------------------------------------------------------------


def test_pending_before_scheduling() -> None:
    obs = observe(make_pod("Pending", start=None))
    assert obs.phase == "Pending"
    assert obs.reason is None
    assert not obs.terminal
    assert obs.recheck_after is None


def test_pending_while_the_sidecar_starts() -> None:
    obs = observe(make_pod("Pending", waiting("PodInitializing"), waiting("ContainerCreating")))
    assert obs.phase == "Pending"
    assert obs.recheck_after is None
    assert obs.start_time == at(1)


def test_pending_while_the_build_container_is_created() -> None:
    obs = observe(make_pod("Pending", waiting("ContainerCreating"), running()))
    assert obs.phase == "Pending"
    assert not obs.terminal
    assert obs.images == [
        {"container": "build", "image": "ruby:2.6"},
        {"container": "db", "image": "postgres:11.7", "imageID": PG_ID},
    ]


def test_running() -> None:
    obs = observe(make_pod("Running", running(), running()))
    assert obs.phase == "Running"
    assert obs.reason is None
    assert obs.exit_code is None
    assert obs.start_time == at(1)
    assert obs.completion_time is None
    assert obs.images == BOTH_IMAGES
    assert not obs.terminal


# -- outcomes of the build container ---------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "db"),
    [
        ("Succeeded", terminated(0, finished=31)),
        ("Succeeded", terminated(143, finished=31)),
        # The build is done; the kubelet is still stopping the sidecar.
        ("Running", running()),
    ],
)
def test_build_exit_zero_succeeds(phase: str, db: Json) -> None:
    obs = observe(make_pod(phase, terminated(0, finished=30), db))
    assert obs.phase == "Succeeded"
    assert obs.reason is None
    assert obs.exit_code == 0
    assert obs.terminal
    assert obs.start_time == at(1)
    assert obs.completion_time == at(30)
    assert obs.images == BOTH_IMAGES


def test_succeeded_without_services() -> None:
    obs = observe(make_pod("Succeeded", terminated(0), with_service=False))
    assert obs.phase == "Succeeded"
    assert obs.images == [{"container": "build", "image": "ruby:2.6", "imageID": RUBY_ID}]


def test_build_exit_non_zero_is_a_script_failure() -> None:
    obs = observe(make_pod("Failed", terminated(3), terminated(0)))
    assert obs.phase == "Failed"
    assert obs.reason == "ScriptFailure"
    assert obs.exit_code == 3
    assert obs.message is not None and "3" in obs.message
    assert obs.completion_time == at(30)
    assert obs.images == BOTH_IMAGES
    assert obs.terminal


@pytest.mark.parametrize("exit_code", [137, 0])
def test_oom_killed(exit_code: int) -> None:
    obs = observe(make_pod("Failed", terminated(exit_code, reason="OOMKilled"), terminated(0)))
    assert obs.phase == "Failed"
    assert obs.reason == "OOMKilled"
    assert obs.exit_code == exit_code
    assert obs.terminal


@pytest.mark.parametrize("build", [terminated(137), running()])
def test_deadline_exceeded_is_a_timeout(build: Json) -> None:
    pod = make_pod(
        "Failed", build, terminated(137), reason="DeadlineExceeded", message=DEADLINE_MESSAGE
    )
    obs = observe(pod)
    assert obs.phase == "Failed"
    assert obs.reason == "Timeout"
    assert obs.message == DEADLINE_MESSAGE
    assert obs.terminal


def test_evicted_by_the_kubelet() -> None:
    pod = make_pod(
        "Failed",
        terminated(137),
        terminated(137),
        reason="Evicted",
        message=EVICTED_MESSAGE,
        conditions=[disruption("TerminationByKubelet", EVICTED_MESSAGE)],
    )
    obs = observe(pod)
    assert obs.phase == "Failed"
    assert obs.reason == "PodEvicted"
    assert obs.message == EVICTED_MESSAGE


def test_evicted_without_a_disruption_condition() -> None:
    pod = make_pod(
        "Failed", terminated(137), terminated(137), reason="Evicted", message=EVICTED_MESSAGE
    )
    assert observe(pod).reason == "PodEvicted"


@pytest.mark.parametrize(
    "why", ["EvictionByEvictionAPI", "PreemptionByScheduler", "DeletionByTaintManager"]
)
def test_disruption_target_on_a_running_pod(why: str) -> None:
    pod = make_pod("Running", running(), running(), conditions=[disruption(why, "taken away")])
    obs = observe(pod)
    assert obs.phase == "Failed"
    assert obs.reason == "PodEvicted"


@pytest.mark.parametrize(
    "why", ["EvictionByEvictionAPI", "PreemptionByScheduler", "DeletionByTaintManager"]
)
def test_disruption_target_with_the_deletion_that_follows_it(why: str) -> None:
    # The eviction API (kubectl drain), the scheduler and the taint manager set the condition
    # and then delete the pod: the watch may show both at once. It is still an eviction.
    pod = make_pod(
        "Running",
        running(),
        running(),
        conditions=[disruption(why, "Eviction API: evicting")],
        deletion=at(21),
    )
    obs = observe(pod)
    assert obs.phase == "Failed"
    assert obs.reason == "PodEvicted"


def test_deleted_while_running() -> None:
    obs = observe(make_pod("Running", running(), running(), deletion=at(25)))
    assert obs.phase == "Failed"
    assert obs.reason == "PodDeleted"
    assert obs.terminal
    assert obs.images == BOTH_IMAGES


def test_deleted_while_pending() -> None:
    obs = observe(make_pod("Pending", waiting("ContainerCreating"), deletion=at(2)))
    assert obs.reason == "PodDeleted"


def test_deleting_a_finished_pod_keeps_its_outcome() -> None:
    pod = make_pod("Succeeded", terminated(0), terminated(0), deletion=at(100))
    obs = observe(pod, 100)
    assert obs.phase == "Succeeded"
    assert obs.exit_code == 0
    failed = make_pod("Failed", terminated(2), terminated(0), deletion=at(100))
    assert observe(failed, 100).reason == "ScriptFailure"


# -- images that cannot be pulled ------------------------------------------------------------


def test_invalid_image_name_fails_at_once() -> None:
    message = (
        'Failed to apply default image tag "Ruby:2.6": couldn\'t parse image name "Ruby:2.6": '
        "invalid reference format: repository name (library/Ruby) must be lowercase"
    )
    pod = make_pod("Pending", waiting("InvalidImageName", message), running())
    obs = observe(pod, 2)
    assert obs.phase == "Failed"
    assert obs.reason == "ImagePullFailed"
    assert obs.message is not None and "build" in obs.message and "InvalidImageName" in obs.message
    assert obs.terminal


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_pull_error_within_grace_is_pending(reason: str) -> None:
    pod = make_pod("Pending", waiting(reason, PULL_DENIED), running())
    obs = observe(pod, 21)  # started at 1: 20 s of the 60 s grace used
    assert obs.phase == "Pending"
    assert obs.reason == reason
    assert obs.recheck_after == pytest.approx(40.0)
    assert not obs.terminal


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_pull_error_past_grace_fails(reason: str) -> None:
    pod = make_pod("Pending", waiting(reason, PULL_DENIED), running())
    obs = observe(pod, 61)
    assert obs.phase == "Failed"
    assert obs.reason == "ImagePullFailed"
    assert obs.message is not None and "build" in obs.message
    assert "nope:1" in obs.message
    assert obs.recheck_after is None


def test_service_pull_error_past_grace_fails() -> None:
    pod = make_pod("Pending", waiting("PodInitializing"), waiting("ImagePullBackOff", "Back-off"))
    obs = observe(pod, 200)
    assert obs.reason == "ImagePullFailed"
    assert obs.message is not None and obs.message.startswith("db: ")


def test_grace_counts_from_creation_when_not_started() -> None:
    pod = make_pod("Pending", waiting("ErrImagePull", PULL_DENIED), start=None)
    obs = observe(pod, 10)
    assert obs.phase == "Pending"
    assert obs.recheck_after == pytest.approx(50.0)


def test_create_container_config_error_within_grace_is_pending() -> None:
    pod = make_pod("Pending", waiting("CreateContainerConfigError", 'secret "creds" not found'))
    obs = observe(pod, 11)
    assert obs.phase == "Pending"
    assert obs.recheck_after == pytest.approx(50.0)


def test_create_container_config_error_past_grace_is_invalid_spec() -> None:
    pod = make_pod(
        "Pending", waiting("CreateContainerConfigError", 'secret "creds" not found'), running()
    )
    obs = observe(pod, 120)
    assert obs.phase == "Failed"
    assert obs.reason == "InvalidSpec"
    assert obs.message is not None and 'secret "creds" not found' in obs.message


# -- the shell -------------------------------------------------------------------------------


def test_no_sh_in_the_image() -> None:
    pod = make_pod("Failed", terminated(128, "StartError", NO_SH), terminated(0))
    obs = observe(pod)
    assert obs.phase == "Failed"
    assert obs.reason == "NoShell"
    assert obs.message is not None and "sh" in obs.message
    assert obs.exit_code == 128


def test_no_shell_named_by_the_entrypoint() -> None:
    # `entrypoint: ["/bin/sh", "-c"]` on an image without /bin/sh.
    pod = make_pod("Failed", terminated(128, "StartError", NO_BIN_SH), terminated(0))
    assert observe(pod).reason == "NoShell"


def test_other_start_errors_are_script_failures() -> None:
    message = (
        "failed to create containerd task: failed to create shim task: OCI runtime create "
        'failed: runc create failed: unable to start container process: exec: "/usr/bin/tini": '
        "permission denied: unknown"
    )
    obs = observe(make_pod("Failed", terminated(128, "StartError", message), terminated(0)))
    assert obs.phase == "Failed"
    assert obs.reason == "ScriptFailure"
    assert obs.message is not None and "/usr/bin/tini" in obs.message


# -- helpers ---------------------------------------------------------------------------------


def test_images_skip_empty_image_ids() -> None:
    pod = make_pod("Pending", waiting("ContainerCreating"), waiting("ContainerCreating"))
    assert images(pod) == [
        {"container": "build", "image": "ruby:2.6"},
        {"container": "db", "image": "postgres:11.7"},
    ]


def test_images_of_a_pod_without_status() -> None:
    pod = make_pod("Pending")
    del pod["status"]
    assert images(pod) == [
        {"container": "build", "image": "ruby:2.6"},
        {"container": "db", "image": "postgres:11.7"},
    ]
    assert observe(pod).phase == "Pending"


def test_parse_time() -> None:
    assert parse_time("2025-03-01T12:00:00Z") == T0
    assert parse_time(None) is None
    assert parse_time("") is None


def test_terminal_phases() -> None:
    assert Observation("Succeeded").terminal
    assert Observation("Failed").terminal
    assert not Observation("Pending").terminal
    assert not Observation("Running").terminal
