"""What a job's pod says about the attempt: phase, reason, exit code, digests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cijob.render import names
from cijob.render.pod import BUILD_CONTAINER
from cijob.source import observe as source

Pod = Mapping[str, Any]

# Waiting reasons the kubelet writes (pkg/kubelet/images and kuberuntime).
PULL_WAITING = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "RegistryUnavailable"}
CONFIG_WAITING = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
# DisruptionTarget reasons (k8s.io/api/core/v1): who took the pod away.
EVICTION_REASONS = {
    "EvictionByEvictionAPI",
    "PreemptionByScheduler",
    "DeletionByTaintManager",
    "TerminationByKubelet",
}
START_FAILURES = {"StartError", "ContainerCannotRun"}
# What a build container killed by a pod's deletion exits with: 128 + SIGTERM, + SIGKILL.
KILLED_EXIT_CODES = (143, 137)
# The kubelet's own cap on a fallback termination message (80 lines, 2048 bytes).
LOG_TAIL_BYTES = 2048


@dataclass(frozen=True)
class Observation:
    """The attempt as its pod shows it. `phase` is the attempt's, not the pod's."""

    phase: str
    reason: str | None = None
    message: str | None = None
    exit_code: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    images: list[dict[str, str]] = field(default_factory=list)
    # Seconds until the observation may change with no new event (a grace period ending).
    recheck_after: float | None = None
    # The end of the build container's output, when it failed (the kubelet's fallback message).
    log_tail: str | None = None
    # status.services: the service sidecars that failed (cijob.services.watch).
    services: list[dict[str, Any]] | None = None
    # The commit the clone container checked out (spec.source), once the script runs on it.
    commit: str | None = None

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _statuses(pod: Pod) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("containerStatuses") or []), *(status.get("initContainerStatuses") or [])]


def _build_status(pod: Pod) -> Mapping[str, Any]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == BUILD_CONTAINER:
            return dict(cs)
    return {}


def images(pod: Pod) -> list[dict[str, str]]:
    """(container, image as the job named it, imageID) of every container, build first."""
    spec = pod.get("spec") or {}
    ids = {cs.get("name"): cs.get("imageID") for cs in _statuses(pod)}
    out = []
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        item = {"container": c["name"], "image": c["image"]}
        if ids.get(c["name"]):
            item["imageID"] = ids[c["name"]]
        out.append(item)
    return out


def _condition(pod: Pod, type_: str) -> Mapping[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return dict(c)
    return None


def _no_shell(message: str) -> bool:
    """runc's words when the launcher's shell is not in the image."""
    missing = "executable file not found" in message or "no such file or directory" in message
    return missing and any(s in message for s in ('"sh"', "/bin/sh", "bash"))


def _terminated(pod: Pod, now: datetime) -> Observation | None:
    """The outcome once the build container has terminated or the pod has failed."""
    status = pod.get("status") or {}
    build = _build_status(pod)
    term = (build.get("state") or {}).get("terminated")
    common: dict[str, Any] = {"start_time": status.get("startTime"), "images": images(pod)}
    finished = (term or {}).get("finishedAt") or now.strftime("%Y-%m-%dT%H:%M:%SZ")
    disruption = _condition(pod, "DisruptionTarget")
    if status.get("phase") == "Failed" and status.get("reason") == "DeadlineExceeded":
        return Observation(
            "Failed",
            "Timeout",
            status.get("message") or "the job timed out",
            completion_time=finished,
            **common,
        )
    # A script that succeeded before the eviction took effect succeeded (the kubelet says so).
    evicted = disruption is not None or status.get("reason") == "Evicted"
    if evicted and status.get("phase") != "Succeeded":
        why = (disruption or {}).get("reason")
        reason = "PodDeleted" if why == "DeletionByPodGC" else "PodEvicted"
        message = status.get("message") or (disruption or {}).get("message") or "pod evicted"
        return Observation("Failed", reason, message, completion_time=finished, **common)
    if term is None:
        if status.get("phase") == "Failed":
            message = status.get("message") or "the pod failed before the build container ran"
            return Observation("Failed", "PodEvicted", message, completion_time=finished, **common)
        return None
    code = term.get("exitCode")
    if term.get("reason") == "OOMKilled":
        # An OOM kill fails the job even when the process reported 0, as Tekton decides.
        return Observation(
            "Failed",
            "OOMKilled",
            "the build container ran out of memory",
            exit_code=code,
            completion_time=finished,
            log_tail=log_tail(term),
            **common,
        )
    if term.get("reason") in START_FAILURES:
        message = term.get("message") or ""
        if _no_shell(message):
            return Observation(
                "Failed",
                "NoShell",
                "the image has no sh or bash to run the script: " + message,
                exit_code=code,
                completion_time=finished,
                **common,
            )
        return Observation(
            "Failed",
            "ScriptFailure",
            f"the build container could not start: {message}",
            exit_code=code,
            completion_time=finished,
            **common,
        )
    if code == 0:
        return Observation(
            "Succeeded", None, "script succeeded", exit_code=0, completion_time=finished, **common
        )
    return Observation(
        "Failed",
        "ScriptFailure",
        f"script exited with code {code}",
        exit_code=code,
        completion_time=finished,
        log_tail=log_tail(term),
        **common,
    )


def log_tail(term: Mapping[str, Any]) -> str | None:
    """The last 2 KiB of a failed build container's output: what the kubelet wrote as its
    termination message (FallbackToLogsOnError: the log's end when the file is empty)."""
    message = term.get("message")
    if not message:
        return None
    data = str(message).encode()[-LOG_TAIL_BYTES:]
    return data.decode(errors="ignore")


def _waiting(pod: Pod, now: datetime, grace: float) -> Observation | None:
    """A pod stuck before its containers run: bad image names fail at once, pull and config
    errors after `grace` seconds (the kubelet keeps retrying, and a registry may recover)."""
    status = pod.get("status") or {}
    common: dict[str, Any] = {"start_time": status.get("startTime"), "images": images(pod)}
    since = parse_time(status.get("startTime") or pod["metadata"].get("creationTimestamp"))
    waited = (now - since).total_seconds() if since else 0.0
    for cs in _statuses(pod):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        detail = f"{cs.get('name')}: {reason}: {waiting.get('message') or cs.get('image')}"
        if reason == "InvalidImageName":
            return Observation("Failed", "ImagePullFailed", detail, **common)
        if reason in PULL_WAITING | CONFIG_WAITING:
            outcome = "ImagePullFailed" if reason in PULL_WAITING else "InvalidSpec"
            if waited >= grace:
                return Observation("Failed", outcome, detail, **common)
            return Observation("Pending", reason, detail, recheck_after=grace - waited, **common)
    return None


def _stopped(pod: Pod) -> Observation | None:
    """An attempt the operator ended: the reason it wrote on the pod when it stopped it."""
    annotations = pod["metadata"].get("annotations") or {}
    reason = annotations.get(names.STOP_REASON_ANNOTATION)
    if not reason:
        return None
    status = pod.get("status") or {}
    term = (_build_status(pod).get("state") or {}).get("terminated") or {}
    return Observation(
        "Failed",
        reason,
        annotations.get(names.STOP_MESSAGE_ANNOTATION) or reason,
        exit_code=term.get("exitCode"),
        start_time=status.get("startTime"),
        completion_time=term.get("finishedAt"),
        images=images(pod),
        log_tail=log_tail(term),
    )


def _unscheduled(pod: Pod) -> Observation | None:
    """A pod no node has taken: the scheduler's own words (FailedScheduling), or its gate."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            reason = c.get("reason") or "Unschedulable"
            message = c.get("message") or "no node can take the pod yet"
            return Observation("Pending", reason, message, images=images(pod))
    return None


def started(pod: Pod) -> bool:
    """Whether a kubelet has taken the pod: only then can a lowered activeDeadlineSeconds end
    it (the kubelet counts it from status.startTime); a pod not started is deleted instead."""
    return bool(
        (pod.get("spec") or {}).get("nodeName") and (pod.get("status") or {}).get("startTime")
    )


def done(pod: Pod) -> bool:
    """Nothing of the pod runs any more, or ever will."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def stopping(pod: Pod) -> bool:
    """The operator has already lowered the pod's deadline and said why."""
    annotations = pod["metadata"].get("annotations") or {}
    ads = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    return names.STOP_REASON_ANNOTATION in annotations and ads is not None and ads <= 1


def _deleted(pod: Pod) -> bool:
    """Deleted before its script finished: still running, or ended by the deletion's kill.

    The tracking finalizer keeps a deleted pod until its attempt is recorded, so an operator
    that was not watching when it went sees it only once the kubelet has killed it: `Failed`,
    the build container ended by the signal (or never run). An eviction sets DisruptionTarget
    before it deletes: the condition says why the pod went."""
    if not pod["metadata"].get("deletionTimestamp") or _condition(pod, "DisruptionTarget"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") not in ("Succeeded", "Failed"):
        return True
    if status.get("phase") == "Succeeded" or status.get("reason") == "DeadlineExceeded":
        return False
    term = (_build_status(pod).get("state") or {}).get("terminated")
    killed = term is not None and term.get("exitCode") in KILLED_EXIT_CODES
    return term is None or (killed and term.get("reason") != "OOMKilled")


def observe_pod(pod: Pod, now: datetime, image_pull_grace: float) -> Observation:
    """The attempt's state from its pod, the way the kubelet reported it."""
    obs = _observe_pod(pod, now, image_pull_grace)
    commit = source.checked_out(pod)
    # Pending has no commit yet: it rides on the Running write, never a write of its own.
    return replace(obs, commit=commit) if commit and obs.phase != "Pending" else obs


def _observe_pod(pod: Pod, now: datetime, image_pull_grace: float) -> Observation:
    stopped = _stopped(pod)
    if stopped is not None:
        return stopped
    status = pod.get("status") or {}
    if _deleted(pod):
        return Observation(
            "Failed",
            "PodDeleted",
            "the pod was deleted before the job finished",
            start_time=status.get("startTime"),
            images=images(pod),
        )
    fetch = source.fetch_failure(pod)
    if fetch is not None:
        finished = fetch[1] or now.strftime("%Y-%m-%dT%H:%M:%SZ")
        start = status.get("startTime")
        return Observation(
            "Failed", "SourceFetchFailed", fetch[0], start_time=start,
            completion_time=finished, images=images(pod),
        )  # fmt: skip
    done = _terminated(pod, now)
    if done is not None:
        return done
    stuck = _waiting(pod, now, image_pull_grace)
    if stuck is not None:
        return stuck
    if status.get("phase") == "Running":
        return Observation(
            "Running", None, None, start_time=status.get("startTime"), images=images(pod)
        )
    unscheduled = _unscheduled(pod)
    if unscheduled is not None:
        return unscheduled
    return Observation(
        "Pending", None, None, start_time=status.get("startTime"), images=images(pod)
    )
