"""The CiJob status: only what the operator observed of the job's pods."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cijob.api.spec import Model

Phase = Literal["Pending", "Running", "Succeeded", "Failed", "Canceled"]


class ImageStatus(Model):
    """The image one container ran, with the digest the kubelet resolved."""

    container: str = Field(description="Container name (`build` or a service's).")
    image: str = Field(description="The image as the job named it.")
    imageID: str | None = Field(default=None, description="The image digest the node ran.")


class ServiceStatus(Model):
    """A service of the current attempt that exited or was restarted while the job ran."""

    container: str = Field(description="The service's container (its first alias, or svc-N).")
    image: str = Field(description="The service image as the job named it.")
    restartCount: int = Field(description="How often the kubelet restarted it.")
    lastTerminationReason: str | None = Field(
        default=None, description="Why it last ended: OOMKilled, Error, Completed, ..."
    )
    lastExitCode: int | None = Field(default=None, description="Its last exit code.")
    lastFinishedAt: str | None = Field(default=None, description="When it last ended.")


class Condition(Model):
    """A Kubernetes-style condition (`Ready`, `Succeeded`)."""

    type: str = Field(description="Condition type.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str | None = Field(default=None, description="Machine-readable reason.")
    message: str | None = Field(default=None, description="Human-readable detail.")
    lastTransitionTime: str | None = Field(default=None, description="When status last changed.")
    observedGeneration: int | None = Field(
        default=None, description="The spec generation this condition was computed from."
    )


class ArchivedLog(Model):
    """Where one container's log of one attempt was archived (docs/logs.md)."""

    container: str = Field(description="Container name (`build` or a service's).")
    url: str = Field(description="The object: `s3://bucket/key` or `file:///path`.")
    bytes: int = Field(description="Size of the stored object.")
    truncated: bool = Field(
        description="The log was longer than logArchive.maxBytes and was cut, with a marker line."
    )


class AttemptStatus(Model):
    """The outcome of one attempt (one pod)."""

    attempt: int = Field(description="Attempt number, from 1.")
    podName: str | None = Field(default=None, description="The attempt's pod.")
    phase: Phase | None = Field(default=None, description="Phase the attempt ended in.")
    reason: str | None = Field(default=None, description="Why it ended.")
    message: str | None = Field(default=None, description="Human-readable detail.")
    exitCode: int | None = Field(default=None, description="Exit code of the build script.")
    logTail: str | None = Field(
        default=None, description="The last lines (at most 2 KiB) of the attempt's build output."
    )
    startTime: str | None = Field(default=None, description="When the attempt's pod started.")
    completionTime: str | None = Field(default=None, description="When the attempt ended.")
    logs: list[ArchivedLog] | None = Field(
        default=None,
        description="Where the attempt's container logs were archived; empty when nothing "
        "could be kept (its pod never ran or was gone).",
    )


class CiJobStatus(Model):
    """Observed state of the job; written by the operator only."""

    phase: Phase | None = Field(
        default=None, description="Pending, Running, Succeeded, Failed or Canceled."
    )
    reason: str | None = Field(
        default=None,
        description="Machine-readable reason: ScriptFailure, ImagePullFailed, Timeout, "
        "PodEvicted, PodDeleted, OOMKilled, ServiceNotReady, NoShell, SourceFetchFailed, "
        "InvalidSpec, "
        "InvalidAuthConfig, CredentialHelperFailed, PolicyViolation, Canceled.",
    )
    message: str | None = Field(default=None, description="Human-readable detail.")
    exitCode: int | None = Field(default=None, description="Exit code of the build script.")
    logTail: str | None = Field(
        default=None,
        description="The last lines (at most 2 KiB) of a failed attempt's build output, as the "
        "kubelet keeps them (terminationMessagePolicy FallbackToLogsOnError).",
    )
    attempt: int | None = Field(default=None, description="Current attempt number, from 1.")
    podName: str | None = Field(default=None, description="Pod of the current attempt.")
    startTime: str | None = Field(
        default=None, description="When the job started (its first attempt was made)."
    )
    completionTime: str | None = Field(default=None, description="When the job finished.")
    attemptStartTime: str | None = Field(
        default=None,
        description="When the current attempt's pod started: the attempt's timeout counts "
        "from here, as the kubelet counts activeDeadlineSeconds.",
    )
    images: list[ImageStatus] | None = Field(
        default=None, description="Images the current attempt's containers ran, with digests."
    )
    services: list[ServiceStatus] | None = Field(
        default=None,
        description="Services of the current attempt that exited, were restarted or were "
        "OOM-killed; the job goes on without them, as GitLab's does.",
    )
    commit: str | None = Field(
        default=None,
        description="The commit the script ran on: what the clone container checked out "
        "(spec.source).",
    )
    shortCommit: str | None = Field(
        default=None, description="The first 8 characters of `commit` (CI_COMMIT_SHORT_SHA)."
    )
    attempts: list[AttemptStatus] | None = Field(
        default=None, description="Earlier attempts, oldest first."
    )
    logs: list[ArchivedLog] | None = Field(
        default=None,
        description="Where the current attempt's container logs were archived, once it ended "
        "(with logArchive configured); empty when nothing could be kept.",
    )
    conditions: list[Condition] | None = Field(default=None, description="Conditions.")
    observedGeneration: int | None = Field(
        default=None, description="The spec generation the status reflects."
    )
