"""The kubelet simulator's `clone` init container: it checks out nothing, but ends as the real
one does, 0 with `commit=<sha>` as its termination message, or 1 with git's words."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from testground.plans import Behaviour

CLONE = "clone"


def _env(c: Mapping[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c.get("env") or []}


def commit_of(c: Mapping[str, Any], b: Behaviour) -> str:
    """The planned commit, the job's exact commit, else one made up from the URL and ref."""
    env = _env(c)
    made_up = hashlib.sha1(f"{env.get('CIJOB_GIT_URL')}@{env.get('CIJOB_GIT_REF')}".encode())
    return b.clone_commit or env.get("CIJOB_GIT_COMMIT") or made_up.hexdigest()


def message(c: Mapping[str, Any], b: Behaviour) -> str:
    """The termination message of init container `c` when it succeeds ('' for other ones)."""
    if c.get("name") != CLONE:
        return ""
    ref = _env(c).get("CIJOB_GIT_REF") or "main"
    return f"commit={commit_of(c, b)}\nbranch={ref}\n"


def has_clone(spec: Mapping[str, Any]) -> bool:
    return any(c.get("name") == CLONE for c in spec.get("initContainers") or [])
