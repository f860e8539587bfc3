"""Pure views of a CiJob's status: the exit code, the closing line, progress from its pod."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cijob.render.pod import BUILD_CONTAINER
from cijob.source.render import CLONE_CONTAINER

TERMINAL = ("Succeeded", "Failed", "Canceled")
# Exit code of a failure that is not the script's own (the pod, the image, the spec, ...).
NOT_THE_SCRIPT = 1
Json = Mapping[str, Any]


def is_terminal(status: Json) -> bool:
    return status.get("phase") in TERMINAL


def exit_code(status: Json) -> int:
    """0 when it succeeded; the script's exit code when the script failed; else 1."""
    if status.get("phase") == "Succeeded":
        return 0
    code = status.get("exitCode")
    if status.get("reason") == "ScriptFailure" and isinstance(code, int) and 0 < code < 256:
        return code
    return NOT_THE_SCRIPT


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def duration_seconds(job: Json) -> float | None:
    """From the CiJob's creation to its completion (None while it runs)."""
    created = _time((job.get("metadata") or {}).get("creationTimestamp"))
    done = _time((job.get("status") or {}).get("completionTime"))
    return (done - created).total_seconds() if created and done else None


def human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def summary(job: Json) -> dict[str, Any]:
    """What `-o json` prints: the outcome in one object."""
    status = job.get("status") or {}
    meta = job.get("metadata") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "phase": status.get("phase"),
        "reason": status.get("reason"),
        "message": status.get("message"),
        "exitCode": status.get("exitCode"),
        "attempt": status.get("attempt"),
        "durationSeconds": duration_seconds(job),
        "cliExitCode": exit_code(status),
    }


def closing_line(job: Json) -> str:
    """`rspec: Failed (ScriptFailure), exit code 3, attempt 1, 12s`."""
    s = summary(job)
    reason = f" ({s['reason']})" if s["reason"] else ""
    code = s["exitCode"] if s["exitCode"] is not None else "-"
    return (
        f"{s['name']}: {s['phase']}{reason}, exit code {code}, attempt {s['attempt'] or '-'}, "
        f"{human(s['durationSeconds'])}"
    )


def _waiting(c: Json) -> tuple[str, str] | None:
    waiting = (c.get("state") or {}).get("waiting")
    if waiting:
        return waiting.get("reason") or "Waiting", waiting.get("message") or ""
    return None


def _cloning(c: Json, job: Json, image: str | None) -> str | None:
    """What the clone init container is doing; None once it is done."""
    state = c.get("state") or {}
    if "terminated" in state:
        return None
    w = _waiting(c)
    if w and w[0] != "PodInitializing":
        return f"clone ({image}): {w[0]} {w[1]}".rstrip()
    url = ((job.get("spec") or {}).get("source") or {}).get("git", {}).get("url")
    return f"cloning {url}"


def progress(job: Json, pod: Json | None) -> str | None:
    """One line saying what the job waits on now, or None when there is nothing to say."""
    status = job.get("status") or {}
    if is_terminal(status):
        return None
    if pod is None:
        return "waiting for the operator to create the pod" if not status.get("attempt") else None
    pstatus = pod.get("status") or {}
    for cond in pstatus.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") != "True":
            return f"scheduling: {cond.get('message') or cond.get('reason') or 'no node yet'}"
    images = {
        c["name"]: c.get("image")
        for c in [
            *(pod.get("spec") or {}).get("initContainers", []),
            *(pod.get("spec") or {}).get("containers", []),
        ]
    }
    for c in pstatus.get("initContainerStatuses") or []:
        if c.get("name") == CLONE_CONTAINER:
            line = _cloning(c, job, images.get(CLONE_CONTAINER))
            if line is not None:
                return line
            continue
        w = _waiting(c)
        if w:
            return f"service {c['name']} ({images.get(c['name'])}): {w[0]} {w[1]}".rstrip()
        if not c.get("started"):
            return f"starting service {c['name']} ({images.get(c['name'])})"
    for c in pstatus.get("containerStatuses") or []:
        if c.get("name") != BUILD_CONTAINER:
            continue
        w = _waiting(c)
        if w and w[0] == "ContainerCreating":
            return f"pulling or starting {images.get(BUILD_CONTAINER)}"
        if w:
            return f"build ({images.get(BUILD_CONTAINER)}): {w[0]} {w[1]}".rstrip()
        if "running" in (c.get("state") or {}):
            return "running the script"
    if pstatus.get("phase") == "Pending":
        return "pod pending"
    return None


def build_started(pod: Json | None) -> bool:
    """Whether the build container has started (running or finished): its log exists."""
    for c in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        state = c.get("state") or {}
        if c.get("name") == BUILD_CONTAINER and ("running" in state or "terminated" in state):
            return True
    return False


# Pod events worth a progress line: the kubelet's own words for pulls, starts and failures.
PROGRESS_EVENTS = frozenset(
    {"Scheduled", "FailedScheduling", "Pulling", "Pulled", "Started", "Failed", "BackOff"}
)


def event_lines(events: Sequence[Json], seen: set[str]) -> list[str]:
    """Messages of pod events not shown yet (oldest first); marks them in `seen`."""
    out = []
    ordered = sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    for e in ordered:
        uid = (e.get("metadata") or {}).get("uid") or ""
        key = f"{uid}/{e.get('count')}"
        if e.get("reason") in PROGRESS_EVENTS and key not in seen and e.get("message"):
            seen.add(key)
            out.append(str(e["message"]))
    return out
