"""CiJob status documents built from observations, and the rule for when to write one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cijob.lifecycle.observe import Observation
from cijob.services.watch import carried

Status = dict[str, Any]
TERMINAL = ("Succeeded", "Failed", "Canceled")
WAITING = "Waiting"
# The PodScheduled reason the API server gives a pod created with scheduling gates.
GATED_REASON = "SchedulingGated"
# Fields of the status that change only when the job really moved on; the condition's
# lastTransitionTime follows them, so it is not compared on its own.
_COMPARED = (
    "phase",
    "reason",
    "message",
    "exitCode",
    "logTail",
    "attempt",
    "podName",
    "images",
    "services",
    "commit",
    "attempts",
    "logs",
    "attemptStartTime",
    "completionTime",
    "observedGeneration",
)


def timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_terminal(status: Mapping[str, Any]) -> bool:
    return status.get("phase") in TERMINAL


def _condition(
    phase: str, reason: str | None, message: str | None, generation: int, now: datetime
) -> dict[str, Any]:
    # One `Succeeded` condition, as Tekton and Knative report runs: Unknown while it runs.
    value = {"Succeeded": "True", "Failed": "False", "Canceled": "False"}.get(phase, "Unknown")
    return {
        "type": "Succeeded",
        "status": value,
        "reason": reason or phase,
        "message": message or phase,
        "lastTransitionTime": timestamp(now),
        "observedGeneration": generation,
    }


def build(
    old: Mapping[str, Any],
    *,
    phase: str,
    generation: int,
    now: datetime,
    reason: str | None = None,
    message: str | None = None,
    exit_code: int | None = None,
    attempt: int | None = None,
    pod_name: str | None = None,
    images: list[dict[str, str]] | None = None,
    start_time: str | None = None,
    completion_time: str | None = None,
    attempts: list[dict[str, Any]] | None = None,
    attempt_start_time: str | None = None,
    waiting: bool = False,
    log_tail: str | None = None,
    services: list[dict[str, Any]] | None = None,
    commit: str | None = None,
) -> Status:
    """A whole new status; `None` values are written as null so merge patches clear them.

    `startTime` and `completionTime` are the job's; `attemptStartTime` is when the current
    attempt's pod started, the clock its timeout counts from. `waiting`: the job cannot start
    its attempt yet, for `reason`; a `Waiting` condition says so, from when it began."""
    status: Status = {
        "phase": phase,
        "reason": reason,
        "message": message,
        "exitCode": exit_code,
        "logTail": log_tail,
        "attempt": attempt if attempt is not None else old.get("attempt"),
        "podName": pod_name if pod_name is not None else old.get("podName"),
        "images": images if images is not None else old.get("images"),
        "commit": commit or old.get("commit"),
        "startTime": old.get("startTime") or start_time or timestamp(now),
        "completionTime": completion_time
        if completion_time or phase not in TERMINAL
        else timestamp(now),
        "attempts": attempts if attempts is not None else old.get("attempts"),
        # the current attempt's failing services; a new attempt's first observation resets it
        "services": services if services is not None else old.get("services"),
        "attemptStartTime": attempt_start_time,
        "observedGeneration": generation,
    }
    status["shortCommit"] = status["commit"][:8] if status["commit"] else None
    if phase not in TERMINAL:
        status["completionTime"] = None
    condition = _condition(phase, reason, message, generation, now)
    before = next((c for c in old.get("conditions") or [] if c.get("type") == "Succeeded"), None)
    if before and before.get("status") == condition["status"] and before.get("lastTransitionTime"):
        # the time the condition last changed status, as metav1.Condition defines it
        condition["lastTransitionTime"] = before["lastTransitionTime"]
    status["conditions"] = [condition]
    if waiting:
        wait = {
            "type": WAITING,
            "status": "True",
            "reason": reason or phase,
            "message": message or phase,
            "lastTransitionTime": timestamp(now),
            "observedGeneration": generation,
        }
        # Held by a gate (a queue's admission) and waiting for a node are two waits, each
        # timed from its own start (docs/lifecycle.md, Queueing).
        same_wait = (old.get("reason") == GATED_REASON) == (reason == GATED_REASON)
        if waiting_since(old) is not None and same_wait:
            wait["lastTransitionTime"] = _waiting(old)["lastTransitionTime"]
        status["conditions"].append(wait)
    return status


def _waiting(status: Mapping[str, Any]) -> Mapping[str, Any]:
    for c in status.get("conditions") or []:
        if c.get("type") == WAITING and c.get("status") == "True":
            return dict(c)
    return {}


def waiting_since(status: Mapping[str, Any]) -> str | None:
    """When the job began to wait to start its attempt, if it is waiting."""
    return _waiting(status).get("lastTransitionTime")


def from_observation(
    old: Mapping[str, Any], obs: Observation, generation: int, now: datetime
) -> Status:
    """The status an attempt's observation gives, keeping the attempt bookkeeping."""
    phase = obs.phase
    status = build(
        old,
        phase=phase,
        generation=generation,
        now=now,
        reason=obs.reason,
        message=obs.message,
        exit_code=obs.exit_code,
        images=obs.images or None,
        start_time=obs.start_time,
        completion_time=obs.completion_time,
        attempt_start_time=obs.start_time,
        log_tail=obs.log_tail,
        commit=obs.commit,
        # a pod no node has taken (the scheduler's FailedScheduling, a scheduling gate), and
        # until it starts once it waited: the condition's time is its pending clock
        waiting=phase == "Pending"
        and obs.start_time is None
        and (obs.reason is not None or waiting_since(old) is not None),
    )
    # the attempt's pod says it all (none included), but for a termination it has forgotten
    status["services"] = carried(old.get("services"), obs.services)
    return status


def current_attempt_ended(status: Mapping[str, Any]) -> bool:
    """The current attempt has its record in `attempts`: it failed and the next is due."""
    attempts = status.get("attempts") or []
    return bool(attempts) and attempts[-1].get("attempt") == status.get("attempt")


def attempt_record(old: Mapping[str, Any], obs: Observation) -> dict[str, Any]:
    """What an ended attempt leaves in `status.attempts`."""
    record = {
        "attempt": old.get("attempt"),
        "podName": old.get("podName"),
        "phase": obs.phase,
        "reason": obs.reason,
        "message": obs.message,
        "exitCode": obs.exit_code,
        "logTail": obs.log_tail,
        "startTime": obs.start_time,
        "completionTime": obs.completion_time,
    }
    return {k: v for k, v in record.items() if v is not None}


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether `new` says anything `old` does not: one write per real transition. A pod that
    got its start time while still Pending is no transition of the job's: the time rides on
    the Running write (a loaded API server shows that state apart, which cost a write)."""
    keys: tuple[str, ...] = _COMPARED
    if old.get("phase") == new.get("phase") == "Pending":
        keys = tuple(k for k in _COMPARED if k != "attemptStartTime")
    return any(old.get(k) != new.get(k) for k in keys)
