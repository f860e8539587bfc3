"""What a pod's service sidecars say: not ready in time (ServiceNotReady), or failing (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from cijob.lifecycle.observe import Observation, parse_time

Pod = Mapping[str, Any]
Event = tuple[str, str, str]
NOT_READY = "ServiceNotReady"


def _sidecars(pod: Pod) -> list[Mapping[str, Any]]:
    """The service containers: init containers with restartPolicy Always."""
    spec = pod.get("spec") or {}
    return [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]


def _statuses(pod: Pod) -> dict[str, Mapping[str, Any]]:
    status = pod.get("status") or {}
    return {cs.get("name", ""): cs for cs in status.get("initContainerStatuses") or []}


def _build_state(pod: Pod) -> Mapping[str, Any]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        return dict(cs.get("state") or {})
    return {}


def _build_began(pod: Pod) -> bool:
    state = _build_state(pod)
    return "running" in state or "terminated" in state


def _first_run(cs: Mapping[str, Any]) -> datetime | None:
    """When the service's container started, as far as its status still tells: the last
    run's start once it was restarted (an earlier start is no longer reported)."""
    last = (cs.get("lastState") or {}).get("terminated") or {}
    running = (cs.get("state") or {}).get("running") or {}
    return parse_time(last.get("startedAt") or running.get("startedAt"))


def not_ready(pod: Pod, wait_seconds: int, now: datetime) -> tuple[str | None, float | None]:
    """(message naming the first probed service not ready within `wait_seconds` of its start,
    or None; seconds until the next one may be due). Only before the build has begun."""
    if _build_began(pod):
        return None, None
    statuses = _statuses(pod)
    recheck: float | None = None
    for c in _sidecars(pod):
        probe = c.get("startupProbe")
        cs = statuses.get(c["name"])
        if probe is None or cs is None or cs.get("started"):
            continue
        since = _first_run(cs)
        if since is None:
            continue  # not running yet: pulling its image, which has its own grace
        left = wait_seconds - (now - since).total_seconds()
        if left <= 0:
            port = (probe.get("tcpSocket") or {}).get("port")
            return (
                f"service {c['image']} (container {c['name']}) did not accept connections on "
                f"port {port} within {wait_seconds} s",
                None,
            )
        recheck = left if recheck is None else min(recheck, left)
    return None, recheck


def failures(pod: Pod) -> list[dict[str, Any]] | None:
    """status.services: the sidecars that exited or were restarted; None when none did."""
    statuses = _statuses(pod)
    # Once the build has ended the kubelet stops the sidecars: that end is no failure.
    build_ended = "terminated" in _build_state(pod)
    out = []
    for c in _sidecars(pod):
        cs = statuses.get(c["name"]) or {}
        restarts = int(cs.get("restartCount") or 0)
        now_ended = (cs.get("state") or {}).get("terminated")
        term = now_ended if now_ended and not build_ended else None
        term = term or ((cs.get("lastState") or {}).get("terminated") if restarts else None)
        if restarts == 0 and not term:
            continue
        record: dict[str, Any] = {
            "container": c["name"],
            "image": c["image"],
            "restartCount": restarts,
        }
        if term:
            record["lastTerminationReason"] = term.get("reason")
            record["lastExitCode"] = term.get("exitCode")
            record["lastFinishedAt"] = term.get("finishedAt")
        out.append({k: v for k, v in record.items() if v is not None})
    return out or None


def carried(
    old: Sequence[Mapping[str, Any]] | None, new: list[dict[str, Any]] | None
) -> list[dict[str, Any]] | None:
    """`new` records, with the last termination an earlier one saw when the pod no longer
    says (the kubelet's final status of a stopped sidecar may drop its lastState)."""
    before = {s.get("container"): s for s in old or []}
    out = []
    for record in new or []:
        was = before.get(record["container"]) or {}
        if "lastTerminationReason" not in record and was.get("lastTerminationReason"):
            keys = ("lastTerminationReason", "lastExitCode", "lastFinishedAt")
            record = {**record, **{k: was[k] for k in keys if k in was}}
        out.append(record)
    return out or None


def observe_services(pod: Pod, obs: Observation, wait_seconds: int, now: datetime) -> Observation:
    """The observation with the services' failures, or the ServiceNotReady it has become."""
    obs = replace(obs, services=failures(pod))
    if obs.terminal:
        return obs
    message, recheck = not_ready(pod, wait_seconds, now)
    if message is not None:
        return replace(obs, phase="Failed", reason=NOT_READY, message=message, recheck_after=None)
    if recheck is not None:
        recheck = recheck if obs.recheck_after is None else min(recheck, obs.recheck_after)
        return replace(obs, recheck_after=recheck)
    return obs


def failure_events(
    old: Sequence[Mapping[str, Any]] | None, new: Sequence[Any] | None
) -> list[Event]:
    """A Warning per service whose restart count went up since `old` (an exit not restarted
    yet is in the status; its restart, moments later, is the Event)."""
    before = {s.get("container"): s.get("restartCount") or 0 for s in old or []}
    events: list[Event] = []
    for s in new or []:
        if (s.get("restartCount") or 0) <= before.get(s["container"], 0):
            continue
        reason = s.get("lastTerminationReason") or "Error"
        code = s.get("lastExitCode")
        how = f"{reason}, exit code {code}" if code is not None else reason
        restarts = s["restartCount"]
        times = f"restarted {restarts} time{'s' if restarts != 1 else ''}"
        events.append(
            (
                "Warning",
                "ServiceFailed",
                f"service {s['image']} (container {s['container']}) {times}; last ended: "
                f"{how}. The job goes on.",
            )
        )
    return events
