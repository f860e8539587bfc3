"""The operator's Prometheus metrics (docs/metrics.md): few labels, never a job's or pod's name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from cijob.lifecycle.observe import parse_time

Status = Mapping[str, Any]
Buckets = tuple[float, ...]
CONTENT_TYPE = CONTENT_TYPE_LATEST
# A CI job runs for seconds to hours.
RUN_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, float("inf"))
# Waiting to start: from the API server's whole seconds up to a long queue.
WAIT_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))
# The operator's own work: milliseconds.
FAST_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf"))
TERMINAL = ("Succeeded", "Failed", "Canceled")
# No `*_created` series beside every counter and histogram: twice the series, for a time
# Prometheus does not need (it sees resets itself). The setting is the process's.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """Every metric of one operator, in a registry of its own (so tests can run several).

    `enabled=False` counts nothing and serves nothing; `namespace_label` adds `namespace` to
    the job metrics, for platforms that bill or alert per tenant."""

    def __init__(self, enabled: bool = True, namespace_label: bool = False) -> None:
        self.enabled = enabled
        self.namespace_label = namespace_label
        self.registry = r = CollectorRegistry(auto_describe=True)
        ns = ["namespace"] if namespace_label else []
        by_outcome, by_phase = [*ns, "phase", "reason"], [*ns, "phase"]

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(name, doc, list(labels), registry=r)

        def histogram(name: str, doc: str, labels: Sequence[str], buckets: Buckets) -> Histogram:
            return Histogram(name, doc, list(labels), buckets=buckets, registry=r)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, registry=r)

        self.jobs_finished = counter(
            "cijob_jobs_finished",
            "CiJobs ended, by phase and reason (empty when Succeeded).",
            by_outcome,
        )
        self.attempts_finished = counter(
            "cijob_attempts_finished", "Attempts ended, by phase and reason.", by_outcome
        )
        self.job_duration = histogram(
            "cijob_job_duration_seconds",
            "From a job's status.startTime to its completionTime.",
            by_phase,
            RUN_BUCKETS,
        )
        self.attempt_duration = histogram(
            "cijob_attempt_duration_seconds", "An attempt's pod start to its end.", by_phase,
            RUN_BUCKETS,
        )  # fmt: skip
        self.created_to_pod = histogram(
            "cijob_job_created_to_pod_created_seconds",
            "From the CiJob's creationTimestamp to its first pod's create.",
            ns,
            WAIT_BUCKETS,
        )
        self.created_to_running = histogram(
            "cijob_job_created_to_running_seconds",
            "From the CiJob's creationTimestamp to the operator seeing its first attempt's "
            "build run: queueing as users feel it.",
            ns,
            WAIT_BUCKETS,
        )
        self.queue_depth = gauge("cijob_workqueue_depth", "Jobs queued for a reconcile.")
        self.queue_latency = histogram(
            "cijob_workqueue_queue_duration_seconds",
            "How long a job waited in the work queue before a worker took it.",
            (),
            FAST_BUCKETS,
        )
        self.reconcile_duration = histogram(
            "cijob_reconcile_duration_seconds", "One reconcile of one job.", (), FAST_BUCKETS
        )
        self.reconcile_errors = counter(
            "cijob_reconcile_errors", "Reconciles that failed and were scheduled again."
        )
        self.api_requests = counter(
            "cijob_api_requests",
            "Requests to the API server by verb, resource and HTTP code (0: no answer); the "
            "watches (kopf's) and the Lease's are not among them.",
            ["verb", "resource", "code"],
        )
        self.leader = gauge("cijob_leader", "1 while this replica works (holds the Lease).")
        self.jobs_held = gauge(
            "cijob_jobs_held", "Jobs held Pending by maxRunningJobsPerNamespace."
        )
        self.archive_failures = counter(
            "cijob_log_archive_failures", "Build logs that could not be archived."
        )
        if enabled:
            ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, fds

    def expose(self) -> bytes:
        """The text exposition format, for GET /metrics."""
        return generate_latest(self.registry)

    def _ns(self, body: Mapping[str, Any]) -> list[str]:
        return [body["metadata"]["namespace"]] if self.namespace_label else []

    def watch(self, depth: Callable[[], int], held: Callable[[], int]) -> None:
        """The gauges read when scraped (nothing to do on every change): the work queue's
        depth, the jobs held by maxRunningJobsPerNamespace."""
        self.queue_depth.set_function(lambda: float(depth()))
        self.jobs_held.set_function(lambda: float(held()))

    def queued(self, seconds: float) -> None:
        if self.enabled:
            self.queue_latency.observe(seconds)

    def reconciled(self, seconds: float, failed: bool) -> None:
        if not self.enabled:
            return
        self.reconcile_duration.observe(seconds)
        if failed:
            self.reconcile_errors.inc()

    def api_request(self, method: str, path: str, code: int) -> None:
        if self.enabled:
            verb, resource = verb_and_resource(method, path)
            self.api_requests.labels(verb, resource, str(code)).inc()

    def pod_created(self, body: Mapping[str, Any], attempt: int, now: datetime) -> None:
        created = parse_time(body["metadata"].get("creationTimestamp"))
        if self.enabled and attempt == 1 and created is not None:
            _child(self.created_to_pod, self._ns(body)).observe(_seconds(created, now))

    def status_written(
        self, body: Mapping[str, Any], old: Status, new: Status, now: datetime
    ) -> None:
        """What a status write that landed says happened: attempts and the job ended, the
        first attempt's build seen running."""
        if not self.enabled:
            return
        ns = self._ns(body)
        for phase, reason, seconds in ended_attempts(old, new):
            self.attempts_finished.labels(*ns, phase, reason).inc()
            if seconds is not None:
                self.attempt_duration.labels(*ns, phase).observe(seconds)
        finished = ended_job(old, new)
        if finished is not None:
            phase, reason, seconds = finished
            self.jobs_finished.labels(*ns, phase, reason).inc()
            if seconds is not None:
                self.job_duration.labels(*ns, phase).observe(seconds)
        created = parse_time(body["metadata"].get("creationTimestamp"))
        if created is not None and first_build_running(old, new):
            _child(self.created_to_running, ns).observe(_seconds(created, now))


def _child(histogram: Histogram, labels: list[str]) -> Histogram:
    """The series of `labels`; the metric itself when it has none (no namespace label)."""
    return histogram.labels(*labels) if labels else histogram


def _seconds(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0)


def _between(start: str | None, end: str | None) -> float | None:
    a, b = parse_time(start), parse_time(end)
    return None if a is None or b is None else _seconds(a, b)


Outcome = tuple[str, str, float | None]


def ended_attempts(old: Status, new: Status) -> list[Outcome]:
    """(phase, reason, duration) of every attempt `new` ends that `old` had not: the records
    it adds to `attempts`, and the current attempt when the job ends with it."""
    before = {r.get("attempt") for r in old.get("attempts") or []}
    out: list[Outcome] = [
        (
            r.get("phase") or "Failed",
            r.get("reason") or "",
            _between(r.get("startTime"), r.get("completionTime")),
        )
        for r in new.get("attempts") or []
        if r.get("attempt") not in before
    ]
    recorded = before | {r.get("attempt") for r in new.get("attempts") or []}
    current = new.get("attempt")
    if current and current not in recorded and ended_job(old, new) is not None:
        duration = _between(new.get("attemptStartTime"), new.get("completionTime"))
        out.append((new["phase"], new.get("reason") or "", duration))
    return out


def ended_job(old: Status, new: Status) -> Outcome | None:
    """(phase, reason, duration) when `new` is the job's end, None otherwise."""
    if old.get("phase") in TERMINAL or new.get("phase") not in TERMINAL:
        return None
    duration = _between(new.get("startTime"), new.get("completionTime"))
    return new["phase"], new.get("reason") or "", duration


def first_build_running(old: Status, new: Status) -> bool:
    """The first attempt's build is seen running (or, when the operator looked late, already
    ended with an exit code, retried or not) for the first time."""
    if old.get("attempts") or (old.get("attempt") or 0) > 1:
        return False
    if old.get("phase") not in (None, "Pending"):
        return False
    records = new.get("attempts") or []
    if records:
        return records[0].get("exitCode") is not None
    if new.get("attempt") != 1:
        return False
    return new.get("phase") == "Running" or (
        new.get("phase") in TERMINAL and new.get("exitCode") is not None
    )


def verb_and_resource(method: str, path: str) -> tuple[str, str]:
    """`("LIST", "pods")` for `GET /api/v1/namespaces/a/pods?limit=500`: the API server's own
    verbs, and the resource with its subresource, never a name."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    resource = rest[0] if rest else ""
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    verb = "LIST" if method == "GET" and len(rest) == 1 else method
    return verb, resource


# What a Kube or Reconciler made without metrics counts into: nothing.
DISABLED = Metrics(enabled=False)
