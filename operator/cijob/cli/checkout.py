"""The git checkout `cijob run .gitlab-ci.yml JOB` runs in: its remote and HEAD as spec.source."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cijob.api.rules import GIT_URL

Note = Callable[[str], None]
_USERINFO_PASSWORD = re.compile(r"^([a-z+]+://)[^/@]*:[^/@]*@")


def _git(cwd: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def clean_url(url: str) -> str:
    """The remote's URL without a password (the cluster gets credentials from a Secret)."""
    return _USERINFO_PASSWORD.sub(r"\1", url)


def local_checkout(cwd: Path, note: Note) -> dict[str, Any] | None:
    """{url, commit[, ref]} of the checkout at `cwd`, or None (not a checkout, no remote the
    cluster can reach); `note` gets a warning when the tree is dirty or HEAD is not pushed."""
    if _git(cwd, "rev-parse", "--is-inside-work-tree") != "true":
        return None
    upstream = _git(cwd, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}")
    remote = upstream.split("/", 1)[0] if upstream else "origin"
    raw = _git(cwd, "remote", "get-url", remote)
    commit = _git(cwd, "rev-parse", "HEAD")
    if not raw or not commit:
        note("warning: this git checkout has no remote (or no commit): nothing is cloned")
        return None
    url = clean_url(raw)
    if url != raw:
        note(f"warning: the remote {remote}'s URL holds a password: left out (use secretRef)")
    if not re.match(GIT_URL, url):
        note(f"warning: the remote {url} is not a URL the cluster can fetch: nothing is cloned")
        return None
    if _git(cwd, "status", "--porcelain", "--untracked-files=no"):
        note(
            f"warning: the tree has uncommitted changes: the job runs on {commit[:8]} without them"
        )
    if not _git(cwd, "branch", "-r", "--contains", commit):
        note(
            f"warning: HEAD {commit[:8]} is not on any branch of the remote as last fetched: "
            "push it, or the clone fails"
        )
    source: dict[str, Any] = {"url": url, "commit": commit}
    if upstream and "/" in upstream:
        source["ref"] = upstream.split("/", 1)[1]
    return source
