"""What the clone container's status says: the commit it checked out, or why it failed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cijob.source.render import CLONE_CONTAINER

Pod = Mapping[str, Any]
_COMMIT = re.compile(r"^commit=([0-9a-f]{40}|[0-9a-f]{64})$", re.M)
# A password in a URL's userinfo, should git's words ever carry one.
_USERINFO = re.compile(r"://[^/@\s]*:[^/@\s]*@")
MAX_MESSAGE = 1024


def _clone_terminated(pod: Pod) -> Mapping[str, Any] | None:
    for cs in (pod.get("status") or {}).get("initContainerStatuses") or []:
        if cs.get("name") == CLONE_CONTAINER:
            term = (cs.get("state") or {}).get("terminated")
            return dict(term) if term else None
    return None


def checked_out(pod: Pod) -> str | None:
    """The commit the clone container reported in its termination message."""
    term = _clone_terminated(pod)
    if term is None or term.get("exitCode") != 0:
        return None
    found = _COMMIT.search(str(term.get("message") or ""))
    return found.group(1) if found else None


def redact(message: str) -> str:
    return _USERINFO.sub("://[MASKED]@", message)


def fetch_failure(pod: Pod) -> tuple[str, str | None] | None:
    """(message, finishedAt) when the clone container failed: the attempt is SourceFetchFailed,
    with git's own words as the clone script reported them (its credentials already masked)."""
    term = _clone_terminated(pod)
    if term is None or term.get("exitCode") == 0:
        return None
    text = redact(str(term.get("message") or "").strip())
    if not text:
        text = f"the clone container exited with code {term.get('exitCode')}"
        if term.get("reason"):
            text += f" ({term['reason']})"
    return text[:MAX_MESSAGE], term.get("finishedAt")
