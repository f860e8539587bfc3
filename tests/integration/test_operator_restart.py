"""An operator killed and restarted in the middle of 50 jobs: every job ends once, with one pod
per attempt (the kubelet simulator plays the node)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from kubernetes import watch

from integration.conftest import OperatorFactory
from integration.support import GROUP, PLURAL, TERMINAL, VERSION, CiJobs
from testground.kubesim import KubeSim
from testground.plans import Behaviour

pytestmark = pytest.mark.cluster

N = 50


def test_kubesim_operator_killed_and_restarted_mid_run(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    phases: dict[str, list[str]] = defaultdict(list)
    stop = threading.Event()

    def record() -> None:
        w = watch.Watch()
        for event in w.stream(
            cijobs.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            timeout_seconds=120,
        ):
            obj = event["object"]
            phase = (obj.get("status") or {}).get("phase")
            name = obj["metadata"]["name"]
            if phase and (not phases[name] or phases[name][-1] != phase):
                phases[name].append(phase)
            if stop.is_set():
                w.stop()

    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    # Half the jobs run a while, so the kill lands while pods are running.
    for i in range(N):
        kubesim.plan_job(namespace, f"job-{i}", Behaviour.succeeds(run_seconds=(i % 2) * 2.0))
        if i % 7 == 0:
            kubesim.plan_job(namespace, f"job-{i}", Behaviour.exits(1), attempt=1)
    op = start_operator(log_level="info")
    for i in range(N):
        cijobs.create(
            namespace, f"job-{i}", {"image": "alpine:3.20", "script": ["true"], "retry": {"max": 1}}
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = sum(1 for p in phases.values() if p and p[-1] in TERMINAL)
        if done >= N // 4:
            break
        time.sleep(0.05)
    op.kill()
    time.sleep(0.5)
    start_operator(log_level="info")
    for i in range(N):
        cijobs.wait_phase(namespace, f"job-{i}", timeout=120)
    time.sleep(1.0)  # let any duplicate write show up in the watch before judging
    stop.set()

    for i in range(N):
        name = f"job-{i}"
        status = cijobs.get(namespace, name)["status"]  # type: ignore[index]
        assert status["phase"] == "Succeeded", (name, status)
        seen = phases[name]
        assert [p for p in seen if p in TERMINAL] == ["Succeeded"], (name, seen)
        attempts = 2 if i % 7 == 0 else 1
        assert status["attempt"] == attempts, (name, status)
        pods = sorted(p["metadata"]["name"] for p in cijobs.pods(namespace, name))
        assert pods == [f"{name}-{a}" for a in range(1, attempts + 1)], (name, pods)
