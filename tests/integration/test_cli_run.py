"""`cijob run`, `wait` and `logs` as a user runs them, against the real control plane with the
operator and the kubelet simulator: exit codes, the closing line, names taken, retries."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from integration.conftest import OperatorFactory
from integration.support import ROOT, CiJobs
from testground.kubesim import KubeSim
from testground.plans import Behaviour
from testground.waits import wait_for

pytestmark = pytest.mark.cluster

SPEC = {"image": "alpine:3.20", "script": ["make test"]}


def cijob(kubeconfig: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it (stderr is no terminal: no progress, no colour)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(ROOT / "operator")}
    return subprocess.run(
        [sys.executable, "-m", "cijob.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def manifest(tmp_path: Path, name: str, spec: dict[str, object] | None = None) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "cijob.dev/v1alpha1",
                "kind": "CiJob",
                "metadata": {"name": name},
                "spec": spec or SPEC,
            }
        )
    )
    return str(path)


def test_kubesim_run_exits_with_the_scripts_exit_code(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "broken", Behaviour.exits(3))
    proc = cijob(kubeconfig, "run", "-f", manifest(tmp_path, "broken"), "-n", namespace)
    assert proc.returncode == 3, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("broken: Failed (ScriptFailure), exit code 3, attempt 1, "), last
    assert "\033[" not in proc.stderr  # no colour off a terminal
    assert proc.stdout == ""


def test_kubesim_run_success_and_json_output(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "fine", Behaviour.succeeds())
    proc = cijob(kubeconfig, "run", "-f", manifest(tmp_path, "fine"), "-n", namespace, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["name"] == "fine" and out["namespace"] == namespace
    assert (out["phase"], out["exitCode"], out["attempt"], out["cliExitCode"]) == (
        "Succeeded",
        0,
        1,
        0,
    )
    assert out["durationSeconds"] is not None


def test_kubesim_run_failure_not_the_scripts_exits_one(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "nopull", Behaviour.invalid_image())
    proc = cijob(kubeconfig, "run", "-f", manifest(tmp_path, "nopull"), "-n", namespace)
    assert proc.returncode == 1, proc.stderr
    assert "nopull: Failed (ImagePullFailed)" in proc.stderr


def test_kubesim_run_a_gitlab_ci_job(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
    cijobs: CiJobs,
) -> None:
    start_operator()
    (tmp_path / ".gitlab-ci.yml").write_text(
        "default: {image: ruby:2.6, services: [postgres:11.7], before_script: [bundle install]}\n"
        "test:\n  script: [bundle exec rake spec]\n  artifacts: {paths: [x]}\n"
    )
    kubesim.plan_job(namespace, "test", Behaviour.exits(2))
    proc = cijob(kubeconfig, "run", str(tmp_path / ".gitlab-ci.yml"), "test", "-n", namespace)
    assert proc.returncode == 2, proc.stderr
    assert "artifacts is not carried out" in proc.stderr
    assert "nothing is cloned" in proc.stderr
    job = cijobs.get(namespace, "test")
    assert job is not None
    assert job["metadata"]["annotations"]["cijob.dev/gitlab-job"] == "test"
    assert job["spec"]["services"] == ["postgres:11.7"]


def test_kubesim_run_does_not_overwrite_a_taken_name_and_replace_does(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
    cijobs: CiJobs,
) -> None:
    start_operator()
    kubesim.default = Behaviour.succeeds()
    path = manifest(tmp_path, "again")
    assert cijob(kubeconfig, "run", "-f", path, "-n", namespace).returncode == 0
    first_uid = cijobs.get(namespace, "again")["metadata"]["uid"]  # type: ignore[index]
    second = cijob(kubeconfig, "run", "-f", path, "-n", namespace, "-o", "json")
    assert second.returncode == 0, second.stderr
    fresh = json.loads(second.stdout)["name"]
    assert fresh.startswith("again-") and fresh != "again"
    assert "CiJob again exists already: created " + fresh in second.stderr
    assert cijobs.get(namespace, "again")["metadata"]["uid"] == first_uid  # type: ignore[index]
    third = cijob(kubeconfig, "run", "-f", path, "-n", namespace, "--replace")
    assert third.returncode == 0, third.stderr
    assert "replaced CiJob again" in third.stderr
    assert cijobs.get(namespace, "again")["metadata"]["uid"] != first_uid  # type: ignore[index]


def test_kubesim_run_follow_across_a_retry(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "flaky", Behaviour.exits(1), attempt=1)
    kubesim.plan_job(namespace, "flaky", Behaviour.succeeds(), attempt=2)
    spec = {**SPEC, "retry": {"max": 1}}
    proc = cijob(
        kubeconfig, "run", "-f", manifest(tmp_path, "flaky", spec), "-n", namespace, "--follow"
    )
    assert proc.returncode == 0, proc.stderr
    assert "── attempt 1: pod flaky-1 ──" in proc.stderr
    assert "── attempt 2: pod flaky-2 ──" in proc.stderr
    # the simulator serves each container's log as the kubelet's containerLogs does
    assert f"kubesim: build of {namespace}/flaky-1 ran" in proc.stdout
    assert f"kubesim: build of {namespace}/flaky-2 ran" in proc.stdout
    assert "flaky: Succeeded, exit code 0, attempt 2" in proc.stderr


def test_kubesim_wait_and_its_timeout(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    kubeconfig: Path,
    cijobs: CiJobs,
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "slow", Behaviour.held(exit_code=4))
    cijobs.create(namespace, "slow", SPEC)
    cijobs.wait_phase(namespace, "slow", "Running")
    proc = cijob(kubeconfig, "wait", "slow", "-n", namespace, "--timeout", "1s")
    assert proc.returncode == 1
    assert "did not end within 1s; it is left running" in proc.stderr
    kubesim.release(namespace, "slow-1")
    proc = cijob(kubeconfig, "wait", "slow", "-n", namespace)
    assert proc.returncode == 4, proc.stderr
    assert "slow: Failed (ScriptFailure), exit code 4" in proc.stderr


def test_kubesim_wait_and_logs_of_a_missing_job(
    namespace: str, kubeconfig: Path, crds: list[str]
) -> None:
    for command in ("wait", "logs"):
        proc = cijob(kubeconfig, command, "nothing", "-n", namespace)
        assert proc.returncode == 1
        assert f"CiJob {namespace}/nothing not found" in proc.stderr


def test_kubesim_logs_say_why_there_is_none(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    kubeconfig: Path,
    cijobs: CiJobs,
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "done", Behaviour.succeeds())
    cijobs.create(namespace, "done", SPEC)
    cijobs.wait_phase(namespace, "done")
    proc = cijob(kubeconfig, "logs", "done", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"kubesim: build of {namespace}/done-1 ran (simulated)\n"
    assert (
        "has no attempt 5"
        in cijob(kubeconfig, "logs", "done", "-n", namespace, "--attempt", "5").stderr
    )
    cijobs.core.delete_namespaced_pod("done-1", namespace, grace_period_seconds=0)
    wait_for("pod done-1 to be gone", lambda: cijobs.pod(namespace, "done-1") is None)
    proc = cijob(kubeconfig, "logs", "done", "-n", namespace)
    assert proc.returncode == 1
    assert "pod done-1 no longer exists, and the operator has recorded no archive" in proc.stderr


def test_kubesim_context_and_kubeconfig_flags(
    namespace: str, kubeconfig: Path, crds: list[str]
) -> None:
    proc = cijob(kubeconfig, "wait", "x", "-n", namespace, "--context", "no-such-context")
    assert proc.returncode == 1 and "no-such-context" in proc.stderr
    proc = cijob(kubeconfig, "wait", "x", "-n", namespace, "--kubeconfig", str(kubeconfig))
    assert proc.returncode == 1 and "not found" in proc.stderr


def _interrupted_run(
    kubeconfig: Path, path: str, namespace: str, cijobs: CiJobs, name: str, *extra: str
) -> tuple[int, str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(ROOT / "operator")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cijob.cli", "run", "-f", path, "-n", namespace, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        cijobs.wait_phase(namespace, name, "Running")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def test_kubesim_run_ctrl_c_cancels_with_cancel_on_interrupt(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
    cijobs: CiJobs,
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "stopme", Behaviour.held())
    code, err = _interrupted_run(
        kubeconfig,
        manifest(tmp_path, "stopme"),
        namespace,
        cijobs,
        "stopme",
        "--cancel-on-interrupt",
    )
    assert code == 1, err
    assert "canceling CiJob stopme" in err
    assert "stopme: Canceled (Canceled)" in err
    assert cijobs.get(namespace, "stopme")["status"]["phase"] == "Canceled"  # type: ignore[index]


def test_kubesim_run_ctrl_c_without_a_terminal_leaves_the_job_running(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
    cijobs: CiJobs,
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "keep", Behaviour.held())
    code, err = _interrupted_run(kubeconfig, manifest(tmp_path, "keep"), namespace, cijobs, "keep")
    assert code == 130, err
    assert f"CiJob keep is left running: cijob wait keep -n {namespace}" in err
    assert cijobs.get(namespace, "keep")["status"]["phase"] == "Running"  # type: ignore[index]


def test_kubesim_run_shows_progress_and_colour_on_a_terminal(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "tty", Behaviour.held())
    master, slave = pty.openpty()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(ROOT / "operator")}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cijob.cli",
            "run",
            "-f",
            manifest(tmp_path, "tty"),
            "-n",
            namespace,
        ],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(slave)
    seen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # the pod is held until the command has shown that the script runs
        wait_for("progress on the terminal", lambda: b"running the script" in seen, timeout=60)
        kubesim.release(namespace, "tty-1")
        assert proc.wait(timeout=60) == 0
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode(errors="replace")
    assert "\033[2m… running the script\033[0m" in text
    assert "\033[32mtty: Succeeded, exit code 0, attempt 1," in text


def test_kubectl_cijob_plugin(
    kubeconfig: Path, namespace: str, crds: list[str], cijobs: CiJobs
) -> None:
    plugin = Path(sys.executable).parent / "kubectl-cijob"
    assert plugin.exists(), f"{plugin} is missing: `make venv` installs the kubectl plugin"
    cijobs.create(namespace, "plugged", {**SPEC, "cancel": True})
    kubectl = ROOT / ".cluster" / "bin" / "kubectl"
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PATH": f"{plugin.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        [str(kubectl), "cijob", "logs", "plugged", "-n", namespace],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    # no operator runs here: the job has no pod, and the plugin says so as `cijob` would
    assert proc.returncode == 1, proc.stderr
    assert "CiJob plugged has no pod yet" in proc.stderr
