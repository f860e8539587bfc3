"""What must hold after a chaos run, as pure functions of the evidence gathered at its end."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chaos.audit import PodCreate, StatusWrite, Stray
from testground.kubesim import PodRecord
from testground.plans import ATTEMPT_LABEL

Json = dict[str, Any]
TERMINAL = ("Succeeded", "Failed", "Canceled")
POD_TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Decoy:
    """A foreign object made before its job, named as the operator names its own."""

    kind: str  # Pod or Secret
    name: str
    resource_version: str
    after: str | None  # its resourceVersion at the end; None when it is gone


@dataclass
class Check:
    """One property: how many cases it looked at, each case that broke it, and the cases it
    let pass that a reader should know of."""

    name: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    jobs: list[Json]  # the CiJobs at the end
    pods: list[Json]  # the pods at the end
    records: list[PodRecord]  # the simulated node's
    creates: list[PodCreate]  # every pod created, from the audit log
    incarnations: dict[str, str]  # uid -> name of every CiJob ever created
    statuses: list[StatusWrite]  # every CiJob write, from the audit log
    decoys: list[Decoy]
    strays: list[Stray]
    t0: float  # the run's start on the simulator's monotonic clock, to print times from
    wall_t0: float  # the same instant as time.time()


def _uid(obj: Json) -> str:
    return str(obj["metadata"]["uid"])


def _owner(obj: Json) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref["uid"])
    return None


def _attempt(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _phase(job: Json) -> str | None:
    phase = (job.get("status") or {}).get("phase")
    return str(phase) if phase else None


def terminal_once(ev: Evidence) -> Check:
    """Every job is terminal at the end, and once terminal no write changed its result."""
    check = Check("every job terminal exactly once")
    by_uid: dict[str, list[StatusWrite]] = defaultdict(list)
    for s in ev.statuses:
        by_uid[s.uid].append(s)
    for job in ev.jobs:
        check.checked += 1
        name, uid, phase = job["metadata"]["name"], _uid(job), _phase(job)
        if phase not in TERMINAL:
            check.violations.append(f"{name} ({uid[:8]}): phase {phase} at the end")
            continue
        first: StatusWrite | None = None
        for s in by_uid.get(uid, []):
            if first is None:
                if s.phase in TERMINAL:
                    first = s
                continue
            if (s.phase, s.reason, s.attempt) != (first.phase, first.reason, first.attempt):
                check.violations.append(
                    f"{name} ({uid[:8]}): {first.phase}/{first.reason} (attempt {first.attempt})"
                    f" at {first.at - ev.wall_t0:.1f} s, then {s.phase}/{s.reason} (attempt "
                    f"{s.attempt}) at {s.at - ev.wall_t0:.1f} s by {s.user}"
                )
                break
    return check


def _own_pods(ev: Evidence) -> dict[str, dict[int, list[str]]]:
    """job uid -> attempt -> pod uids, from the audit log and the node's record."""
    own: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for c in ev.creates:
        if c.owner_uid and c.uid not in own[c.owner_uid][_attempt(c.attempt)]:
            own[c.owner_uid][_attempt(c.attempt)].append(c.uid)
    for r in ev.records:
        if r.owner_uid:
            attempt = _attempt(r.labels.get(ATTEMPT_LABEL))
            if r.uid not in own[r.owner_uid][attempt]:
                own[r.owner_uid][attempt].append(r.uid)
    return own


def _first_terminal(ev: Evidence) -> dict[str, float]:
    """job uid -> when a terminal status was first stored (wall clock)."""
    first: dict[str, float] = {}
    for s in ev.statuses:
        if s.phase in TERMINAL and s.uid not in first:
            first[s.uid] = s.at
    return first


def own_outcome(ev: Evidence) -> Check:
    """A terminal job reports its own last pod: the attempt, the pod, its exit code and whether
    it succeeded. A pod deleted before its job ended may be gone before the operator read its
    result: `Failed` is then no false report (a note, not a violation); `Succeeded` would be."""
    check = Check("outcome of the job's own last pod")
    own = _own_pods(ev)
    records = {r.uid: r for r in ev.records}
    ended_at = _first_terminal(ev)
    for job in ev.jobs:
        phase = _phase(job)
        if phase not in TERMINAL:
            continue
        check.checked += 1
        name, uid, status = job["metadata"]["name"], _uid(job), job.get("status") or {}
        said = f"{name} ({uid[:8]}) {phase}/{status.get('reason')}"
        attempts = own.get(uid) or {}
        if not attempts:
            if phase == "Succeeded":
                check.violations.append(f"{said}: no pod of its own ever existed")
            continue
        last = max(attempts)
        rec = next((records[p] for p in reversed(attempts[last]) if p in records), None)
        if status.get("attempt") is not None and status["attempt"] != last:
            check.violations.append(
                f"{said}: reports attempt {status['attempt']}, its last is {last}"
            )
        if rec is None:
            if phase == "Succeeded":
                check.violations.append(f"{said}: its last pod (attempt {last}) never ran")
            continue
        pod = f"its last pod {rec.name} ({rec.uid[:8]})"
        if rec.ended is None:
            check.violations.append(f"{said}: {pod} still runs")
        if (rec.phase == "Succeeded") != (phase == "Succeeded"):
            how = f"{said}: {pod} ended {rec.phase}/{rec.reason}, exit code {rec.exit_code}"
            gone = None if rec.gone is None else rec.gone + ev.wall_t0 - ev.t0
            if phase != "Succeeded" and gone is not None and gone <= ended_at.get(uid, 0.0):
                check.notes.append(f"{how}, and was deleted {ended_at[uid] - gone:.2f} s before")
            else:
                check.violations.append(how)
        if status.get("podName") not in (None, rec.name):
            check.violations.append(f"{said}: names pod {status['podName']}, not {pod}")
        code = status.get("exitCode")
        if code is not None and rec.exit_code is not None and code != rec.exit_code:
            check.violations.append(f"{said}: exit code {code}, {pod} exited {rec.exit_code}")
    return check


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def overlaps(ev: Evidence) -> tuple[Check, Check]:
    """Two pods of one job uid: never running at once, and never one able to run (bound, not
    yet terminal or gone) while the other runs."""
    ran = Check("never two attempts of a job running at once")
    beside = Check("no attempt's pod able to run while another attempt runs")
    by_job: dict[str, list[PodRecord]] = defaultdict(list)
    for r in ev.records:
        if r.owner_uid:
            by_job[r.owner_uid].append(r)
    for job_uid, recs in by_job.items():
        name = ev.incarnations.get(job_uid, "?")
        recs.sort(key=lambda r: r.seen)
        for i, a in enumerate(recs):
            for b in recs[i + 1 :]:
                ran.checked += 1
                beside.checked += 1

                def span(start: float | None, end: float | None) -> tuple[float, float]:
                    return (math.inf if start is None else start, math.inf if end is None else end)

                def show(r: PodRecord, start: float | None, end: float | None) -> str:
                    if start is None:
                        return f"{r.name} never ran"
                    until = "the end" if end is None else f"{end - ev.t0:.2f} s"
                    return f"{r.name} ({r.uid[:8]}) {start - ev.t0:.2f} s to {until}"

                a_ran, b_ran = span(a.ran_from, a.ran_until), span(b.ran_from, b.ran_until)
                if _overlap(a_ran, b_ran):
                    ran.violations.append(
                        f"{name} ({job_uid[:8]}): ran {show(a, a.ran_from, a.ran_until)}"
                        f" and {show(b, b.ran_from, b.ran_until)}"
                    )
                    continue
                for x, y, y_ran in ((a, b, b_ran), (b, a, a_ran)):
                    if _overlap(span(x.seen, x.ended), y_ran):
                        beside.violations.append(
                            f"{name} ({job_uid[:8]}): could run {show(x, x.seen, x.ended)}, "
                            f"ran {show(y, y.ran_from, y.ran_until)}"
                        )
                        break
    return ran, beside


def stopped_at_end(ev: Evidence) -> Check:
    """Every pod of a terminal or deleted job is terminal or gone at the end."""
    check = Check("no pod of an ended job still able to run at the end")
    live = {_uid(j) for j in ev.jobs if _phase(j) not in TERMINAL}
    ended = set(ev.incarnations) - live
    seen: set[str] = set()
    for pod in ev.pods:
        owner = _owner(pod)
        if owner not in ended:
            continue
        check.checked += 1
        seen.add(_uid(pod))
        phase = (pod.get("status") or {}).get("phase")
        if phase not in POD_TERMINAL:
            name = ev.incarnations.get(owner or "", "?")
            check.violations.append(
                f"{name} ({(owner or '')[:8]}): pod {pod['metadata']['name']} is {phase}"
            )
    for r in ev.records:
        if r.owner_uid in ended and r.ended is None and r.uid not in seen:
            check.checked += 1
            name = ev.incarnations.get(r.owner_uid or "", "?")
            check.violations.append(f"{name}: the node still runs {r.name} ({r.uid[:8]})")
    return check


def _pod_story(ev: Evidence, uid: str) -> str:
    """Who made a pod when, and what the node did with it, for a violation's message."""
    parts = [uid[:8]]
    made = next((c for c in ev.creates if c.uid == uid), None)
    if made is not None:
        parts.append(f"made by {made.user} at {made.at - ev.wall_t0:.2f} s")
    rec = next((r for r in ev.records if r.uid == uid), None)
    if rec is not None:
        ended = "" if rec.ended is None else f", ended {rec.ended - ev.t0:.2f} s"
        gone = "" if rec.gone is None else f", gone {rec.gone - ev.t0:.2f} s"
        parts.append(f"seen {rec.seen - ev.t0:.2f} s{ended} {rec.phase}/{rec.reason}{gone}")
    return " ".join(parts)


def one_pod_per_attempt(ev: Evidence) -> Check:
    check = Check("one pod per attempt")
    for job_uid, attempts in _own_pods(ev).items():
        for attempt, pods in sorted(attempts.items()):
            check.checked += 1
            if len(pods) > 1:
                name = ev.incarnations.get(job_uid, "?")
                stories = "; ".join(_pod_story(ev, p) for p in pods)
                check.violations.append(
                    f"{name} ({job_uid[:8]}): {len(pods)} pods for attempt {attempt}: {stories}"
                )
    return check


def foreign_untouched(ev: Evidence) -> Check:
    check = Check("no foreign object touched")
    for d in ev.decoys:
        check.checked += 1
        if d.after is None:
            check.violations.append(f"{d.kind} {d.name}: deleted")
        elif d.after != d.resource_version:
            check.violations.append(
                f"{d.kind} {d.name}: resourceVersion {d.resource_version} -> {d.after}"
            )
    return check


def no_stray_writes(ev: Evidence, writes_checked: int) -> Check:
    check = Check("no write by a replica without the lease", checked=writes_checked)
    for s in ev.strays:
        w = s.write
        when = f"{w.at - ev.wall_t0:.2f} s"
        why = (
            "before it ever held the lease"
            if s.last_held is None
            else f"{w.at - s.last_held:.2f} s after its lease ended"
        )
        check.violations.append(
            f"{w.user} ({w.user_agent.split(' ')[0]}): {w.verb} {w.resource} "
            f"{w.namespace}/{w.name} at {when}, {why}"
        )
    return check


def run_all(ev: Evidence, writes_checked: int) -> list[Check]:
    ran, beside = overlaps(ev)
    return [
        terminal_once(ev),
        own_outcome(ev),
        ran,
        beside,
        stopped_at_end(ev),
        one_pod_per_attempt(ev),
        foreign_untouched(ev),
        no_stray_writes(ev, writes_checked),
    ]


def violations(checks: Iterable[Check]) -> int:
    return sum(len(c.violations) for c in checks)
