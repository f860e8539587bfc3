"""`run --follow` across attempts, with a fake API: one header per attempt, each build log
streamed to stdout in order, the exit code of the end."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from cijob.cli import follow, jobs

Json = dict[str, Any]


class _Resp:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, size: int) -> Any:
        yield from (self.data[i : i + 3] for i in range(0, len(self.data), 3))

    def release_conn(self) -> None:
        pass


class _Core:
    def __init__(self, pods: dict[str, Json], logs: dict[str, bytes]) -> None:
        self.pods, self.logs, self.streamed = pods, logs, []

    def read_namespaced_pod(self, name: str, namespace: str) -> Json:
        if name not in self.pods:
            raise ApiException(status=404)
        return self.pods[name]

    def read_namespaced_pod_log(self, name: str, namespace: str, **kw: Any) -> _Resp:
        self.streamed.append((name, kw["container"], kw["follow"]))
        if name not in self.logs:
            raise ApiException(status=400, reason="Bad Request")
        return _Resp(self.logs[name])


class _Custom:
    def __init__(self, states: list[Json]) -> None:
        self.states = states

    def get_namespaced_custom_object(self, *args: Any) -> Json:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


class _Api:
    def sanitize_for_serialization(self, obj: Any) -> Any:
        return obj


class _Kube:
    def __init__(self, states: list[Json], pods: dict[str, Json], logs: dict[str, bytes]) -> None:
        self.api, self.namespace = _Api(), "ns"
        self.core, self.custom = _Core(pods, logs), _Custom(states)


def _job(phase: str, attempt: int, **extra: Any) -> Json:
    return {
        "metadata": {"name": "j", "namespace": "ns"},
        "status": {"phase": phase, "attempt": attempt, "podName": f"j-{attempt}", **extra},
    }


RUNNING = {"status": {"containerStatuses": [{"name": "build", "state": {"running": {}}}]}}
DONE = {"status": {"containerStatuses": [{"name": "build", "state": {"terminated": {}}}]}}


def _args(**kw: Any) -> argparse.Namespace:
    return argparse.Namespace(
        **{"output": "text", "timeout": None, "cancel_on_interrupt": False, **kw}
    )


def test_follow_streams_each_attempt_with_a_header(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(follow, "POLL_SECONDS", 0)
    kube = _Kube(
        [_job("Running", 1), _job("Running", 2), _job("Succeeded", 2, exitCode=0)],
        {"j-1": DONE, "j-2": RUNNING},
        {"j-1": b"$ make test\nfirst\n", "j-2": b"$ make test\nsecond\n"},
    )
    code = follow.follow_to_end(kube, "j", _args(), logs=True)  # type: ignore[arg-type]
    out, err = capfd.readouterr()
    assert code == 0
    assert out == "$ make test\nfirst\n$ make test\nsecond\n"
    assert err.index("── attempt 1: pod j-1 ──") < err.index("── attempt 2: pod j-2 ──")
    assert err.strip().splitlines()[-1].startswith("j: Succeeded, exit code 0, attempt 2")
    assert kube.core.streamed == [("j-1", "build", True), ("j-2", "build", True)]


def test_a_job_that_ended_before_it_was_seen_gets_its_logs_afterwards(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(follow, "POLL_SECONDS", 0)
    kube = _Kube(
        [_job("Failed", 2, reason="ScriptFailure", exitCode=7)],
        {"j-1": DONE, "j-2": DONE},
        {"j-1": b"one\n"},
    )
    code = follow.follow_to_end(kube, "j", _args(), logs=True)  # type: ignore[arg-type]
    out, err = capfd.readouterr()
    assert code == 7
    assert out == "one\n"
    assert "the log of j-2/build is not available: Bad Request" in err
    assert [s[2] for s in kube.core.streamed] == [False, False]  # finished: no follow


def test_wait_times_out_and_leaves_the_job(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(follow, "POLL_SECONDS", 0.01)
    kube = _Kube([_job("Running", 1)], {"j-1": RUNNING}, {})
    code = follow.follow_to_end(kube, "j", _args(timeout="0s"), logs=False)  # type: ignore[arg-type]
    assert code == 1
    assert "did not end within 0s; it is left running" in capfd.readouterr().err


def test_logs_follow_waits_for_the_build_to_start(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(follow, "POLL_SECONDS", 0)
    pending = {
        "status": {
            "containerStatuses": [
                {"name": "build", "state": {"waiting": {"reason": "ContainerCreating"}}}
            ]
        }
    }
    kube = _Kube(
        [_job("Pending", 1), _job("Running", 1), _job("Running", 1)],
        {"j-1": pending},
        {"j-1": b"hello\n"},
    )
    states = iter([pending, pending, RUNNING])
    monkeypatch.setattr(
        follow, "get_pod", lambda k, name: next(states, RUNNING) if name == "j-1" else None
    )
    monkeypatch.setattr(jobs, "connect", lambda args: kube)
    args = argparse.Namespace(job="j", follow=True, attempt=None, container="build")
    assert jobs._logs(args) == 0
    out, err = capfd.readouterr()
    assert out == "hello\n"
    assert "waiting for the build of CiJob j to start" in err
    assert kube.core.streamed == [("j-1", "build", True)]
