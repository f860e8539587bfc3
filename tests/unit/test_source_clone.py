"""The clone container's script, run with this machine's sh and git on local repositories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cijob.source import clone
from testground.gitserver import COMMITTER

ENV = {
    **COMMITTER,
    "HOME": "/nonexistent",
    "PATH": os.environ["PATH"],
}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A repository: main with two commits, tag v1 on the first, branch feature."""
    repo = tmp_path / "remote"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    for i, name in enumerate(("one", "two")):
        (repo / "f").write_text(name)
        git(repo, "add", "f")
        git(repo, "commit", "-q", "-m", name)
        if i == 0:
            git(repo, "tag", "v1")
    git(repo, "branch", "feature", "v1")
    return repo


def run(tmp: Path, url: str, ref: str = "", commit: str = "", depth: int = 20, creds: str = ""):  # type: ignore[no-untyped-def]
    private, builds = tmp / "private", tmp / "builds"
    private.mkdir(parents=True)
    builds.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        clone.URL_ENV: url,
        clone.REF_ENV: ref,
        clone.COMMIT_ENV: commit,
        clone.DEPTH_ENV: str(depth),
        clone.SUBMODULES_ENV: "none",
        clone.CREDENTIAL_URL_ENV: "",
        clone.DIR_ENV: str(builds / "g" / "p"),
        clone.ENV_FILE_ENV: str(builds / ".env"),
        clone.PRIVATE_DIR_ENV: str(private),
        clone.CREDENTIALS_DIR_ENV: creds or str(tmp / "no-credentials"),
        "CIJOB_TERMINATION_LOG": str(private / "termination-log"),
    }
    proc = subprocess.run(clone.command(), env=env, capture_output=True, text=True)
    message = (private / "termination-log").read_text()
    sourced = (builds / ".env").read_text() if (builds / ".env").exists() else ""
    return proc, message, sourced, builds / "g" / "p"


def test_the_remotes_head(tmp_path: Path, remote: Path) -> None:
    proc, message, sourced, work = run(tmp_path / "c", f"file://{remote}")
    head = git(remote, "rev-parse", "HEAD")
    assert proc.returncode == 0, proc.stderr
    assert message == f"commit={head}\nbranch=main\n"
    assert f"export CI_COMMIT_SHA={head}\n" in sourced
    assert f"export CI_COMMIT_SHORT_SHA={head[:8]}\n" in sourced
    assert "export CI_COMMIT_BRANCH='main'\n" in sourced
    assert (work / "f").read_text() == "two"
    assert (work / "f").stat().st_mode & 0o666 == 0o666  # writable by the build's user too


def test_a_tag_a_branch_and_an_exact_commit(tmp_path: Path, remote: Path) -> None:
    v1 = git(remote, "rev-parse", "v1")
    _, message, sourced, _ = run(tmp_path / "t", f"file://{remote}", ref="v1")
    assert message == f"commit={v1}\ntag=v1\n" and "CI_COMMIT_TAG='v1'" in sourced
    _, message, _, _ = run(tmp_path / "b", f"file://{remote}", ref="feature", depth=1)
    assert message == f"commit={v1}\nbranch=feature\n"
    _, message, _, _ = run(tmp_path / "x", f"file://{remote}", commit=v1)
    assert message.startswith(f"commit={v1}\n")


def test_failures_say_what_and_gits_words(tmp_path: Path, remote: Path) -> None:
    proc, message, sourced, _ = run(tmp_path / "r", f"file://{remote}", ref="nope")
    assert proc.returncode == 1 and sourced == ""
    assert message == "unknown ref nope: no branch or tag named nope on the remote"
    proc, message, _, _ = run(tmp_path / "c", f"file://{remote}", commit="0" * 40)
    assert proc.returncode == 1
    assert message.startswith(f"the commit {'0' * 40} is not on the remote: ")
    assert "not our ref" in message


def test_the_secrets_values_are_masked_in_gits_words(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "password").write_text("hunter2hunter2")
    proc, message, _, _ = run(
        tmp_path / "m", "file:///nonexistent/hunter2hunter2.git", creds=str(creds)
    )
    assert proc.returncode == 1
    assert "[MASKED]" in message and "hunter2" not in message
    assert "hunter2" not in proc.stderr  # (the URL itself never holds one: the API refuses it)
