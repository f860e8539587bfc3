"""`cijob run --follow` on the REAL node: a real script's output reaches the user while the
job runs (each line before the script may go on), across a retry, with the script's exit code.

The script waits at each step for a file the test makes with `kubectl exec`, so a line read
before that proves it was streamed live, not collected at the end. The real node and its
namespaces are test_realnode.py's fixtures, imported.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from integration.conftest import OperatorFactory
from integration.support import ROOT, CiJobs
from integration.test_realnode import PLACEMENT, TIMEOUT, explain
from integration.test_realnode import namespace as namespace
from integration.test_realnode import node as node
from testground import realnode
from testground.waits import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]

# Attempt 1 prints, waits for the go-ahead, fails with 3; attempt 2 prints, waits, succeeds.
SCRIPT = [
    'n=${HOSTNAME##*-}; echo "attempt $n is running"',
    "while [ ! -e /tmp/go ]; do sleep 0.2; done",
    'echo "attempt $n goes on"; [ "$n" != 1 ] || exit 3',
    "echo all done",
]


class Lines:
    """The lines a process writes to one of its pipes, read as they come."""

    def __init__(self, pipe: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, wanted: str, timeout: float = TIMEOUT) -> None:
        def arrived() -> bool:
            while not self._queue.empty():
                line = self._queue.get()
                if line is not None:
                    self.seen.append(line)
            return any(wanted in line for line in self.seen)

        wait_for(f"a line with {wanted!r}", arrived, timeout=timeout)


def test_run_follow_streams_a_real_script_live_across_a_retry(
    node: realnode.NodeState,
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubeconfig: Path,
    kubectl: Any,
    tmp_path: Path,
) -> None:
    start_operator(env={"DOCKER_AUTH_CONFIG": node.docker_auth_config()})
    job = tmp_path / "live.yaml"
    spec = {"image": node.image("sh"), "script": SCRIPT, "retry": {"max": 1}, **PLACEMENT}
    job.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "cijob.dev/v1alpha1",
                "kind": "CiJob",
                "metadata": {"name": "live"},
                "spec": spec,
            }
        )
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(ROOT / "operator")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cijob.cli", "run", "-f", str(job), "-n", namespace, "--follow"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        encoding="utf-8",  # the attempt headers' rules are not ASCII
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        for attempt in (1, 2):
            out.until(f"attempt {attempt} is running")
            # the script cannot have finished: it waits for this go-ahead
            status = cijobs.get(namespace, "live")["status"]  # type: ignore[index]
            assert status["phase"] == "Running", explain(cijobs, namespace, "live")
            assert f"attempt {attempt} goes on" not in out.seen
            kubectl(
                "exec", "-n", namespace, f"live-{attempt}", "-c", "build", "--", "touch", "/tmp/go"
            )
            out.until(f"attempt {attempt} goes on")
        out.until("all done")
        assert proc.wait(timeout=TIMEOUT) == 0
        err.until("live: Succeeded, exit code 0, attempt 2")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "── attempt 1: pod live-1 ──" in err.seen
    assert "── attempt 2: pod live-2 ──" in err.seen
    # each attempt's lines under its own header, in order
    assert out.seen.index("attempt 1 goes on") < out.seen.index("attempt 2 is running")
