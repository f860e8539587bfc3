"""`cijob run .gitlab-ci.yml JOB` in a git checkout: its remote and HEAD become spec.source."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cijob.cli.checkout import clean_url, local_checkout

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def checkout(tmp_path: Path, url: str) -> tuple[Path, Path]:
    """A work tree at tmp_path/work whose `origin` is `url`, with a branch pushed to a bare
    repository at tmp_path/remote.git (fetched back, as after a push)."""
    bare, work = tmp_path / "remote.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    (work / "a").write_text("a\n")
    git(work, "add", "a")
    git(work, "commit", "-q", "-m", "one")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "-u", "origin", "main")
    git(work, "remote", "set-url", "origin", url)
    return work, bare


def test_remote_head_and_upstream_branch(tmp_path: Path) -> None:
    work, _ = checkout(tmp_path, "https://git.example.com/g/p.git")
    notes: list[str] = []
    got = local_checkout(work, notes.append)
    assert got == {
        "url": "https://git.example.com/g/p.git",
        "commit": git(work, "rev-parse", "HEAD"),
        "ref": "main",
    }
    assert notes == []


def test_dirty_tree_and_unpushed_head_are_warned_about(tmp_path: Path) -> None:
    work, _ = checkout(tmp_path, "git@git.example.com:g/p.git")
    (work / "a").write_text("changed\n")
    notes: list[str] = []
    assert local_checkout(work, notes.append) is not None
    assert any("uncommitted changes" in n for n in notes), notes
    git(work, "commit", "-q", "-am", "two")
    notes.clear()
    assert local_checkout(work, notes.append) is not None
    assert any("is not on any branch of the remote" in n for n in notes), notes


def test_a_password_in_the_remote_is_left_out(tmp_path: Path) -> None:
    work, _ = checkout(tmp_path, "https://me:hunter2@git.example.com/g/p.git")
    notes: list[str] = []
    got = local_checkout(work, notes.append)
    assert got is not None and got["url"] == "https://git.example.com/g/p.git"
    assert all("hunter2" not in n for n in notes) and any("password" in n for n in notes)
    assert clean_url("ssh://git@h/p.git") == "ssh://git@h/p.git"


def test_not_a_checkout_or_a_local_remote_gives_no_source(tmp_path: Path) -> None:
    assert local_checkout(tmp_path, lambda _: None) is None
    work, _ = checkout(tmp_path, "/somewhere/local.git")
    notes: list[str] = []
    assert local_checkout(work, notes.append) is None
    assert any("not a URL the cluster can fetch" in n for n in notes)
