"""The shell launcher and the job's scripts, run for real under dash and bash."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from cijob.render import script

DASH = shutil.which("dash")
BASH = shutil.which("bash")
# Where the launcher looks for bash; replaced by a path that does not exist to run it as it
# runs in an image that has only `sh`.
BASH_CANDIDATES = "/usr/local/bin/bash /usr/bin/bash /bin/bash"


@dataclass(frozen=True)
class Run:
    rc: int
    out: str


def launch(
    outer: str,
    inner: str,
    lines: Sequence[str],
    *,
    before: Sequence[str] = (),
    after: Sequence[str] = (),
    limit: str = "60",
    home: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Run:
    """Runs the real launcher as the pod does: `<outer> -c <launcher>` with the pod's env.

    `outer` is the shell that starts the launcher (`sh` of the image or the job's `-c`
    entrypoint); `inner` is what the image offers the script: "bash" or only "sh".
    """
    shell, launcher = _launcher(outer, inner)
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(lines, before, after, limit, home or Path(tmp), extra_env)
        # A file, not a pipe: a background `sleep` the launcher leaves behind must not hold
        # the test until it ends.
        with tempfile.TemporaryFile(dir=tmp) as out:
            done = subprocess.run(
                [shell, "-c", launcher],
                env=env,
                cwd=tmp,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=60,
                check=False,
            )
            out.seek(0)
            return Run(done.returncode, out.read().decode())


def _launcher(outer: str, inner: str) -> tuple[str, str]:
    """(the shell that starts the launcher, the launcher as the image would run it)."""
    assert DASH is not None and BASH is not None, "dash and bash are needed for these tests"
    launcher = script.LAUNCHER
    if inner == "sh":
        assert BASH_CANDIDATES in launcher
        launcher = launcher.replace(BASH_CANDIDATES, "/nonexistent/bash")
    return {"dash": DASH, "bash": BASH}[outer], launcher


def _env(
    lines: Sequence[str],
    before: Sequence[str],
    after: Sequence[str],
    limit: str,
    home: Path,
    extra_env: dict[str, str] | None,
) -> dict[str, str]:
    """The build container's environment for the launcher, as the pod sets it."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        script.SCRIPT_ENV: script.build_script(before, lines),
        script.AFTER_SCRIPT_ENV: script.after_script(after),
        script.AFTER_SCRIPT_TIMEOUT_ENV: limit,
        **(extra_env or {}),
    }


SHELLS = pytest.mark.parametrize(
    ("outer", "inner"),
    [("dash", "bash"), ("bash", "bash"), ("dash", "sh"), ("bash", "sh")],
    ids=["sh-launches-bash", "bash-launches-bash", "sh-only", "bash-launches-sh"],
)


@SHELLS
def test_the_script_shell_is_bash_where_the_image_has_it(outer: str, inner: str) -> None:
    run = launch(outer, inner, ['echo "bash=${BASH_VERSION:+yes}"'])
    assert run.rc == 0
    assert run.out.splitlines()[-1] == ("bash=yes" if inner == "bash" else "bash=")


@SHELLS
def test_each_command_is_echoed_before_its_output(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["echo one", "echo two"], before=["echo zero"])
    assert run.rc == 0
    assert run.out == "$ echo zero\nzero\n$ echo one\none\n$ echo two\ntwo\n"


@SHELLS
def test_before_script_and_script_share_one_shell(outer: str, inner: str) -> None:
    run = launch(outer, inner, ['echo "x=$X"', "cd sub && pwd"], before=["X=42", "mkdir sub"])
    assert run.rc == 0
    assert "x=42\n" in run.out
    assert run.out.rstrip().endswith("/sub")


@SHELLS
def test_stops_at_the_first_failing_line_with_its_exit_code(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["echo a", "sh -c 'exit 3'", "echo never"])
    assert run.rc == 3
    assert run.out == "$ echo a\na\n$ sh -c 'exit 3'\n"


@SHELLS
def test_a_failing_before_script_stops_the_script(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["echo never"], before=["false"])
    assert run.rc == 1
    assert "never" not in run.out


@SHELLS
def test_exit_line_gives_its_code(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["exit 42", "echo never"])
    assert run.rc == 42
    assert "never" not in run.out


@SHELLS
def test_conditions_do_not_stop_the_script(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["if false; then echo no; fi", "false || echo recovered", "true"])
    assert run.rc == 0
    assert "recovered\n" in run.out


@SHELLS
def test_after_script_runs_after_success(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["echo main"], after=["echo cleanup"])
    assert run.rc == 0
    assert run.out == "$ echo main\nmain\n$ echo cleanup\ncleanup\n"


@SHELLS
def test_after_script_runs_after_failure_and_keeps_the_exit_code(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["sh -c 'exit 3'", "echo never"], after=["echo cleanup"])
    assert run.rc == 3
    assert run.out.endswith("$ echo cleanup\ncleanup\n")
    assert "never" not in run.out


@SHELLS
def test_after_script_failure_does_not_change_success(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["true"], after=["sh -c 'exit 4'", "echo never"])
    assert run.rc == 0
    assert "after_script failed with exit code 4 (ignored)" in run.out
    assert "never" not in run.out


@SHELLS
def test_after_script_failure_does_not_change_failure(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["sh -c 'exit 3'"], after=["exit 4"])
    assert run.rc == 3
    assert "after_script failed with exit code 4 (ignored)" in run.out


@SHELLS
def test_after_script_runs_in_a_new_shell(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["export X=from-script", "Y=1"], after=['echo "x=${X:-unset}"'])
    assert run.rc == 0
    assert "x=unset\n" in run.out


@SHELLS
def test_after_script_is_cut_at_its_limit(outer: str, inner: str) -> None:
    run = launch(
        outer, inner, ["echo main"], after=["echo start", "sleep 5", "echo end"], limit="1"
    )
    assert run.rc == 0
    assert "after_script timed out after 1 s" in run.out
    assert "start\n" in run.out
    assert "end\n" not in run.out


@pytest.mark.parametrize(("outer", "inner"), [("dash", "bash"), ("dash", "sh")])
def test_after_script_cut_keeps_the_scripts_failure(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["exit 5"], after=["sleep 5"], limit="1")
    assert run.rc == 5
    assert "after_script timed out after 1 s" in run.out


def test_after_script_timeout_message_does_not_race_the_launcher() -> None:
    # The launcher's `wait` returns as soon as the watchdog has killed the after_script shell,
    # and the launcher then kills the watchdog: the "timed out" message must not depend on
    # which of the two runs first. An exported bash function `kill` (functions win over
    # builtins) that returns late makes the watchdog lose that race every time, as it may
    # on a busy node; the plain test above loses it only now and then.
    slow_kill = '() { builtin kill "$@"; local rc=$?; sleep 0.5; return $rc; }'
    run = launch(
        "bash",
        "bash",
        ["true"],
        after=["sleep 5"],
        limit="1",
        extra_env={"BASH_FUNC_kill%%": slow_kill},
    )
    assert run.rc == 0
    assert "after_script timed out after 1 s" in run.out


@pytest.mark.parametrize("outer", ["dash", "bash"])
def test_pipefail_under_bash(outer: str) -> None:
    run = launch(outer, "bash", ["false | true", "echo after"])
    assert run.rc == 1
    assert "$ false | true\n" in run.out
    assert "after" not in run.out.replace("$ echo after", "")


@pytest.mark.parametrize("outer", ["dash", "bash"])
def test_pipefail_also_in_after_script_under_bash(outer: str) -> None:
    run = launch(outer, "bash", ["true"], after=["false | true", "echo never"])
    assert run.rc == 0
    assert "never" not in run.out
    assert "after_script failed with exit code 1 (ignored)" in run.out


@pytest.mark.parametrize("outer", ["dash", "bash"])
def test_without_bash_a_pipeline_has_its_last_status(outer: str) -> None:
    run = launch(outer, "sh", ["false | true", "echo after"])
    assert run.rc == 0
    assert run.out.endswith("$ echo after\nafter\n")


@SHELLS
def test_odd_lines_are_echoed_verbatim_and_run(outer: str, inner: str, tmp_path: Path) -> None:
    lines = [
        'echo "a\'b"',
        "echo 'c\"d'",
        "echo $HOME",
        'echo "100% done"',
        "echo $(echo sub) `echo tick`",
        "printf '%s\\n' 'back\\slash'",
        "echo -- -n",
    ]
    run = launch(outer, inner, lines, home=tmp_path)
    assert run.rc == 0
    assert run.out.splitlines() == [
        '$ echo "a\'b"',
        "a'b",
        "$ echo 'c\"d'",
        'c"d',
        "$ echo $HOME",
        str(tmp_path),
        '$ echo "100% done"',
        "100% done",
        "$ echo $(echo sub) `echo tick`",
        "sub tick",
        "$ printf '%s\\n' 'back\\slash'",
        "back\\slash",
        "$ echo -- -n",
        "-- -n",
    ]


@SHELLS
def test_multi_line_commands(outer: str, inner: str) -> None:
    block = 'for i in 1 2; do\n  echo "item $i"\ndone'
    heredoc = "cat <<EOF\nline one\nline two\nEOF"
    run = launch(outer, inner, [block, heredoc, "echo last"])
    assert run.rc == 0
    assert run.out == (
        f"$ {block}\nitem 1\nitem 2\n$ {heredoc}\nline one\nline two\n$ echo last\nlast\n"
    )


@SHELLS
def test_a_failing_multi_line_command_stops_the_script(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["if true; then\n  sh -c 'exit 6'\nfi", "echo never"])
    assert run.rc == 6
    assert "never" not in run.out


@SHELLS
def test_no_after_script_prints_nothing_more(outer: str, inner: str) -> None:
    run = launch(outer, inner, ["sh -c 'exit 2'"])
    assert run.rc == 2
    assert run.out == "$ sh -c 'exit 2'\n"


# -- the texts -------------------------------------------------------------------------------


def test_after_script_of_nothing_is_empty() -> None:
    assert script.after_script([]) == ""


def test_scripts_set_errexit() -> None:
    assert script.build_script([], ["true"]).startswith("set -e\n")
    assert script.after_script(["true"]).startswith("set -e\n")


def test_launcher_reads_the_scripts_from_the_environment() -> None:
    for name in (script.SCRIPT_ENV, script.AFTER_SCRIPT_ENV, script.AFTER_SCRIPT_TIMEOUT_ENV):
        assert f"${name}" in script.LAUNCHER
    assert BASH_CANDIDATES in script.LAUNCHER


@SHELLS
def test_after_script_sees_ci_job_status_success_or_failed(outer: str, inner: str) -> None:
    ok = launch(outer, inner, ["true"], after=['echo "status=$CI_JOB_STATUS"'])
    assert "status=success\n" in ok.out
    bad = launch(outer, inner, ["exit 4"], after=['echo "status=$CI_JOB_STATUS"'])
    assert (bad.rc, "status=failed\n" in bad.out) == (4, True)


@SHELLS
def test_sigterm_stops_the_script_and_after_script_runs_as_canceled(
    outer: str, inner: str, tmp_path: Path
) -> None:
    # What the kubelet does to a stopped attempt (cancel, timeout): SIGTERM to the launcher,
    # which is the container's first process, then SIGKILL once the grace period is over.
    shell, launcher = _launcher(outer, inner)
    marker = tmp_path / "child-ran-on"
    lines = ["echo started", f"(sleep 30; touch {marker}) &", "sleep 30", "echo never"]
    after = ['echo "after status=$CI_JOB_STATUS"']
    env = _env(lines, [], after, "60", tmp_path, None)
    out_path = tmp_path / "out"
    with out_path.open("wb") as out:
        # its own session, as a container's first process: the launcher signals its group
        proc = subprocess.Popen(
            [shell, "-c", launcher],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            for _ in range(200):
                if "started" in out_path.read_text() or proc.poll() is not None:
                    break
                time.sleep(0.05)
            proc.terminate()
            rc = proc.wait(20)  # far less than the script's 30 s
        finally:
            if proc.poll() is None:
                proc.kill()
    text = out_path.read_text()
    assert rc == 143, text
    assert "after status=canceled\n" in text
    assert "never" not in text.replace("$ echo never", "")
    # every process of the script was stopped, the one it left in the background too
    assert _group_commands(proc.pid).count("sleep 30") == 0, _group_commands(proc.pid)
    assert not marker.exists()


def _group_commands(pgid: int) -> list[str]:
    """The command lines of the live processes in a process group (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(cmdline.replace(b"\0", b" ").decode().strip())
    return found


@SHELLS
def test_the_project_directory_is_made_when_the_build_starts_elsewhere(
    outer: str, inner: str, tmp_path: Path
) -> None:
    # A build that does not run as root starts in /builds (docs/pod-policy.md).
    project = tmp_path / "group" / "project"
    after = ["pwd"]
    run = launch(
        outer, inner, ["pwd", "touch made"], after=after, extra_env={"CI_PROJECT_DIR": str(project)}
    )
    assert run.rc == 0, run.out
    assert run.out.count(f"\n{project}\n") == 2, run.out
    assert (project / "made").exists()
