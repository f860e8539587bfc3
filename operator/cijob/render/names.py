"""Deterministic names and labels of a job's objects."""

from __future__ import annotations

JOB_LABEL = "cijob.dev/job"
ATTEMPT_LABEL = "cijob.dev/attempt"
GENERATION_ANNOTATION = "cijob.dev/generation"
MANAGED_BY = {"app.kubernetes.io/managed-by": "cijob-operator"}
# Kueue admits a plain pod that carries its LocalQueue's name here (spec.queueName).
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def pod_name(job_name: str, attempt: int) -> str:
    """`<job>-<attempt>`: the same every time, so a second create of an attempt is refused."""
    return f"{job_name}-{attempt}"


def pod_labels(job_name: str, attempt: int, queue_name: str | None = None) -> dict[str, str]:
    labels = {JOB_LABEL: job_name, ATTEMPT_LABEL: str(attempt), **MANAGED_BY}
    if queue_name:
        labels[QUEUE_LABEL] = queue_name
    return labels


def attempt_of(pod_name_: str, job_name: str) -> int | None:
    prefix = job_name + "-"
    rest = pod_name_[len(prefix) :] if pod_name_.startswith(prefix) else ""
    return int(rest) if rest.isdigit() else None


# Set on a pod the operator stopped (by lowering activeDeadlineSeconds): why its attempt ended,
# so the outcome is the operator's decision, not the DeadlineExceeded the kubelet then reports.
STOP_REASON_ANNOTATION = "cijob.dev/stop-reason"
STOP_MESSAGE_ANNOTATION = "cijob.dev/stop-message"

# On every pod the operator makes: the pod stays, once deleted, until its attempt's outcome is
# in the job's status (the Job controller's batch.kubernetes.io/job-tracking; docs/lifecycle.md).
TRACKING_FINALIZER = "cijob.dev/attempt-tracking"
