"""Where archived logs sit in a CiJob status: `logs` for the current attempt, each earlier
attempt's in its `attempts[]` record. Pure functions over plain status documents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Logs = list[dict[str, Any]]
Status = Mapping[str, Any]


def recorded(status: Status) -> dict[int, Logs]:
    """attempt -> its archived logs, as the status holds them."""
    found: dict[int, Logs] = {}
    for record in status.get("attempts") or []:
        if record.get("logs") is not None and record.get("attempt"):
            found[int(record["attempt"])] = list(record["logs"])
    if status.get("logs") is not None and status.get("attempt"):
        found[int(status["attempt"])] = list(status["logs"])
    return found


def ended_attempts(status: Status) -> list[int]:
    """The attempts whose pods are done with: every earlier one, and the current one once the
    job is finished or the attempt has its record (it is being retried)."""
    current = int(status.get("attempt") or 0)
    records = {r.get("attempt") for r in status.get("attempts") or []}
    finished = status.get("phase") in ("Succeeded", "Failed", "Canceled")
    last = current if current and (finished or current in records) else current - 1
    return list(range(1, last + 1))


def place(old: Status, new: Mapping[str, Any], archived: Mapping[int, Logs]) -> dict[str, Any]:
    """`new` with every known attempt's logs in place: what `old` recorded (a status write
    built without them keeps them) and what was `archived` since."""
    known = {**recorded(old), **archived}
    out = dict(new)
    attempts: Sequence[Mapping[str, Any]] = out.get("attempts") or []
    if attempts:
        out["attempts"] = [
            {**r, "logs": known[int(r["attempt"])]}
            if r.get("attempt") and int(r["attempt"]) in known
            else dict(r)
            for r in attempts
        ]
    current = out.get("attempt")
    out["logs"] = known.get(int(current)) if current else None
    return out


def missing(status: Status, in_flight: Sequence[int] = ()) -> list[int]:
    """The ended attempts with no logs recorded and none being archived."""
    have = recorded(status)
    return [a for a in ended_attempts(status) if a not in have and a not in in_flight]
