"""Waiting in line: maxRunningJobsPerNamespace, and pods a scheduling gate holds (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cijob.lifecycle import status as st
from cijob.lifecycle.observe import parse_time

Key = tuple[str, str]
Body = Mapping[str, Any]
# The reason of a job held by maxRunningJobsPerNamespace.
HELD_REASON = "NamespaceLimit"


def holds_slot(status: Mapping[str, Any]) -> bool:
    """A job with an attempt that has not ended: it counts against the namespace's limit
    (between two attempts too: a retry keeps its place)."""
    return bool(status.get("attempt")) and not st.is_terminal(status)


def in_line(body: Body, status: Mapping[str, Any]) -> bool:
    """A job that has not started its first attempt and still may."""
    spec = body.get("spec") or {}
    return not status.get("attempt") and not st.is_terminal(status) and not spec.get("cancel")


def arrival(body: Body) -> tuple[str, str]:
    """First come first served: by creationTimestamp, then name (the timestamps are whole
    seconds, so many jobs share one)."""
    meta = body["metadata"]
    return str(meta.get("creationTimestamp") or ""), str(meta["name"])


Jobs = Mapping[Key, tuple[Body, Mapping[str, Any]]]


@dataclass
class Line:
    """Which jobs of a namespace may start under `limit`: the jobs admitted since their
    status last said so are counted too, so two workers never fill one slot twice."""

    limit: int | None
    admitted: set[Key] = field(default_factory=set)
    held: set[Key] = field(default_factory=set)

    def free(self, namespace: str, jobs: Jobs) -> int:
        assert self.limit is not None
        running = {k for k, (_, s) in jobs.items() if holds_slot(s)}
        running |= {k for k in self.admitted if k[0] == namespace}
        return self.limit - len(running)

    def waiting(self, jobs: Jobs) -> list[Key]:
        line = [k for k, (b, s) in jobs.items() if in_line(b, s) and k not in self.admitted]
        return sorted(line, key=lambda k: arrival(jobs[k][0]))

    def admit(self, key: Key, jobs: Jobs) -> bool:
        """Whether the job `key` (in line, of the namespace whose `jobs` these are) may start
        now; if so its slot is taken at once, before any await."""
        if self.limit is None:
            return True
        free = self.free(key[0], jobs)
        if free > 0 and key in self.waiting(jobs)[:free]:
            self.admitted.add(key)
            self.held.discard(key)
            return True
        self.held.add(key)
        return False

    def release(self, key: Key) -> None:
        """The job ended or went: its slot is free."""
        self.admitted.discard(key)
        self.held.discard(key)

    def next_up(self, namespace: str, jobs: Jobs) -> list[Key]:
        """The held jobs that may start now that a slot is free: the ones to wake."""
        if self.limit is None:
            return []
        free = self.free(namespace, jobs)
        return [k for k in self.waiting(jobs)[: max(free, 0)] if k in self.held]


def held_message(namespace: str, limit: int) -> str:
    # Stable wording: a held job's status is written once, not each time the line moves.
    return (
        f"namespace {namespace} already runs {limit} jobs (maxRunningJobsPerNamespace); "
        "this one starts when one of them ends, first come first served"
    )


def gated(pod: Body) -> bool:
    """The pod carries scheduling gates: a queue (Kueue) holds it on purpose."""
    return bool((pod.get("spec") or {}).get("schedulingGates"))


def pending_since(pod: Body, status: Mapping[str, Any], now: datetime) -> datetime | None:
    """Where pendingTimeoutSeconds counts from for a pod no kubelet started: None (it does
    not run) while scheduling gates hold it; else from when its job last began to wait
    ungated, as the status' Waiting condition says, or from the pod's creation."""
    if gated(pod):
        return None
    was_gated = status.get("reason") == st.GATED_REASON
    if was_gated:
        return now  # the gates went just now: the wait for a node begins
    since = parse_time(st.waiting_since(status)) if status.get("phase") == "Pending" else None
    return since or parse_time(pod["metadata"].get("creationTimestamp")) or now
