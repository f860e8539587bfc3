"""How long an attempt may run, and how long its pod may wait for a node: pure arithmetic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from cijob.lifecycle.observe import Observation, parse_time
from cijob.lifecycle.queueing import gated, pending_since
from cijob.lifecycle.status import GATED_REASON

# A pod whose scheduling gates were removed, not yet placed by a scheduler.
ADMITTED_REASON = "Admitted"

# A pod stuck before the kubelet enforces activeDeadlineSeconds is failed by the operator
# this long after the attempt's own timeout.
DEADLINE_SLACK_SECONDS = 30


def within_limits(
    pod: Mapping[str, Any],
    obs: Observation,
    timeout: int,
    pending_timeout: int,
    now: datetime,
    status: Mapping[str, Any] | None = None,
) -> Observation:
    """The observation, or the failure it has become: an attempt's timeout counts from its
    own pod's start, as the kubelet counts activeDeadlineSeconds; a pod no kubelet has started
    may wait `pending_timeout` seconds, not counting the time scheduling gates held it (the
    job's `status` says when its wait began). A live one is rechecked when its limit falls due."""
    if obs.terminal:
        return obs
    pod_start = parse_time((pod.get("status") or {}).get("startTime"))
    if pod_start is None and gated(pod):
        return gate_held(pod, obs)
    if pod_start is None and obs.reason == GATED_REASON:
        # The gates are gone; the pod's condition still says SchedulingGated until a
        # scheduler looks at it.
        message = "the scheduling gates were removed (admitted); waiting for a node"
        obs = replace(obs, reason=ADMITTED_REASON, message=message)
    if pod_start is not None:
        left = timeout + DEADLINE_SLACK_SECONDS - (now - pod_start).total_seconds()
        reason, what = "Timeout", f"the attempt did not finish within {timeout} s"
    else:
        since = pending_since(pod, status or {}, now) or now
        left = pending_timeout - (now - since).total_seconds()
        reason = "PendingTimeout"
        what = f"the pod was not started within {pending_timeout} s: "
        what += obs.message or "not scheduled"
    if left <= 0:
        return Observation("Failed", reason, what, start_time=obs.start_time, images=obs.images)
    recheck = left if obs.recheck_after is None else min(left, obs.recheck_after)
    return replace(obs, recheck_after=recheck)


def gate_held(pod: Mapping[str, Any], obs: Observation) -> Observation:
    """A pod its scheduling gates hold: Pending, naming them; no clock runs, and the pod's
    next event (a gate removed) wakes the job."""
    gates = ", ".join(
        g.get("name", "") for g in (pod.get("spec") or {}).get("schedulingGates") or []
    )
    message = (
        f"the pod is held by scheduling gates ({gates}) until a queue admits it; "
        "its timeout starts when it runs"
    )
    return replace(obs, phase="Pending", reason=GATED_REASON, message=message, recheck_after=None)
