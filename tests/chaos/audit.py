"""The apiserver's audit log: its policy, and what the checks read from it (pure functions)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

Json = dict[str, Any]

# Writes at Metadata level (who, what, when, the outcome); whole objects only where a check
# needs them: Leases (holders over time), CiJobs (every status written), pod creates (owner
# and attempt of every pod made). Reads are not logged.
POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    verbs: [get, list, watch]
  - level: RequestResponse
    resources:
      - group: coordination.k8s.io
        resources: [leases]
      - group: cijob.dev
        resources: [cijobs, cijobs/status]
  - level: RequestResponse
    verbs: [create]
    resources:
      - group: ""
        resources: [pods]
  - level: Metadata
"""
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Write:
    """One write the API server completed (2xx), at its wall-clock time."""

    at: float
    user: str
    user_agent: str
    verb: str
    resource: str  # `pods`, `pods/status`, `leases`, ...
    namespace: str
    name: str
    response: Json | None  # the object, where the policy logs it


def read(path: Path) -> Iterator[Json]:
    """The log's events; a line cut short by a stopped apiserver is skipped."""
    with path.open(errors="replace") as f:
        for line in f:
            try:
                yield json.loads(line)
            except ValueError:
                continue


def writes(events: Iterable[Json]) -> list[Write]:
    """The successful writes among the events, oldest first."""
    found = []
    for e in events:
        code = (e.get("responseStatus") or {}).get("code", 0)
        if e.get("stage") != "ResponseComplete" or e.get("verb") not in WRITE_VERBS:
            continue
        if not 200 <= code < 300:
            continue
        ref = e.get("objectRef") or {}
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        response = e.get("responseObject")
        name = ref.get("name") or ((response or {}).get("metadata") or {}).get("name", "")
        found.append(
            Write(
                at=_time(e["stageTimestamp"]),
                user=(e.get("user") or {}).get("username", ""),
                user_agent=e.get("userAgent", ""),
                verb=e["verb"],
                resource=resource,
                namespace=ref.get("namespace", ""),
                name=name,
                response=response if isinstance(response, dict) else None,
            )
        )
    found.sort(key=lambda w: w.at)
    return found


@dataclass(frozen=True)
class Tenure:
    """A time during which one user held the Lease (from its write until it expired or another
    user took it)."""

    user: str
    start: float
    end: float


def tenures(all_writes: Iterable[Write], namespace: str, lease: str) -> list[Tenure]:
    """Who held the Lease when, from every successful write of it."""
    lease_writes = [
        w
        for w in all_writes
        if w.resource == "leases" and w.namespace == namespace and w.name == lease
        and w.verb in ("create", "update", "patch") and w.response is not None
    ]  # fmt: skip
    held: list[Tenure] = []
    for w in lease_writes:
        spec = (w.response or {}).get("spec") or {}
        duration = float(spec.get("leaseDurationSeconds") or 0)
        if held and held[-1].user != w.user and held[-1].end > w.at:
            held[-1] = Tenure(held[-1].user, held[-1].start, w.at)  # taken over
        if held and held[-1].user == w.user and held[-1].end >= w.at:
            held[-1] = Tenure(w.user, held[-1].start, w.at + duration)  # renewed in time
        else:
            held.append(Tenure(w.user, w.at, w.at + duration))
    return held


@dataclass(frozen=True)
class Stray:
    """A replica's write while it did not hold the Lease."""

    write: Write
    last_held: float | None  # when its latest tenure before the write ended (None: never held)


def strays(all_writes: Iterable[Write], held: list[Tenure], users: set[str]) -> list[Stray]:
    """The writes of `users` (the replicas) made outside their own tenures, the Lease itself
    and access reviews (which store nothing) aside."""
    by_user: dict[str, list[Tenure]] = {}
    for t in held:
        by_user.setdefault(t.user, []).append(t)
    found = []
    for w in all_writes:
        if w.user not in users or w.resource == "leases" or w.resource.endswith("reviews"):
            continue
        mine = by_user.get(w.user, [])
        if any(t.start <= w.at <= t.end for t in mine):
            continue
        before = [t.end for t in mine if t.end < w.at]
        found.append(Stray(w, max(before) if before else None))
    return found


@dataclass(frozen=True)
class StatusWrite:
    """A CiJob's status as one write left it."""

    at: float
    uid: str
    name: str
    phase: str | None
    reason: str | None
    attempt: int | None
    user: str


def status_writes(all_writes: Iterable[Write], namespace: str) -> list[StatusWrite]:
    """Every CiJob object as the API server stored it after each write, oldest first."""
    found = []
    for w in all_writes:
        if not w.resource.startswith("cijobs") or w.namespace != namespace or not w.response:
            continue
        if w.verb == "delete":
            continue
        meta, status = w.response.get("metadata") or {}, w.response.get("status") or {}
        found.append(
            StatusWrite(
                w.at, meta.get("uid", ""), meta.get("name", ""), status.get("phase"),
                status.get("reason"), status.get("attempt"), w.user,
            )
        )  # fmt: skip
    return found


@dataclass(frozen=True)
class PodCreate:
    """A pod the API server created."""

    at: float
    uid: str
    name: str
    owner_uid: str | None  # its controller ownerReference's
    attempt: str | None  # its `cijob.dev/attempt` label
    user: str


def pod_creates(all_writes: Iterable[Write], namespace: str, attempt_label: str) -> list[PodCreate]:
    found = []
    for w in all_writes:
        if w.resource != "pods" or w.verb != "create" or w.namespace != namespace:
            continue
        meta = (w.response or {}).get("metadata") or {}
        owner = next(
            (r.get("uid") for r in meta.get("ownerReferences") or [] if r.get("controller")), None
        )
        labels = meta.get("labels") or {}
        found.append(
            PodCreate(w.at, meta.get("uid", ""), w.name, owner, labels.get(attempt_label), w.user)
        )
    return found
