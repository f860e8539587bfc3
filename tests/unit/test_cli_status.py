"""The pure views `cijob run` and `wait` print: exit code, closing line, progress."""

from __future__ import annotations

from typing import Any

import pytest

from cijob.cli import status as st

Json = dict[str, Any]


def _job(**status: Any) -> Json:
    return {
        "metadata": {
            "name": "rspec",
            "namespace": "ns",
            "creationTimestamp": "2026-12-01T10:00:00Z",
        },
        "status": status,
    }


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ({"phase": "Succeeded", "exitCode": 0}, 0),
        ({"phase": "Failed", "reason": "ScriptFailure", "exitCode": 3}, 3),
        ({"phase": "Failed", "reason": "OOMKilled", "exitCode": 137}, 1),
        ({"phase": "Failed", "reason": "ImagePullFailed"}, 1),
        ({"phase": "Canceled", "reason": "Canceled"}, 1),
    ],
)
def test_exit_code_is_the_scripts_or_one(status: Json, code: int) -> None:
    assert st.exit_code(status) == code


def test_closing_line() -> None:
    job = _job(
        phase="Failed",
        reason="ScriptFailure",
        exitCode=3,
        attempt=2,
        completionTime="2026-12-01T10:01:05Z",
    )
    assert st.closing_line(job) == "rspec: Failed (ScriptFailure), exit code 3, attempt 2, 1m05s"
    assert st.summary(job)["durationSeconds"] == 65.0
    assert st.summary(job)["cliExitCode"] == 3


def _pod(**status: Any) -> Json:
    return {
        "spec": {
            "containers": [{"name": "build", "image": "ruby:2.6"}],
            "initContainers": [{"name": "svc-0", "image": "postgres:11.7"}],
        },
        "status": status,
    }


@pytest.mark.parametrize(
    ("pod", "line"),
    [
        (None, "waiting for the operator to create the pod"),
        (
            _pod(
                conditions=[
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "message": "0/1 nodes are available",
                    }
                ]
            ),
            "scheduling: 0/1 nodes are available",
        ),
        (
            _pod(
                initContainerStatuses=[
                    {
                        "name": "svc-0",
                        "started": False,
                        "state": {"waiting": {"reason": "ErrImagePull"}},
                    }
                ]
            ),
            "service svc-0 (postgres:11.7): ErrImagePull",
        ),
        (
            _pod(
                initContainerStatuses=[
                    {"name": "svc-0", "started": False, "state": {"running": {}}}
                ]
            ),
            "starting service svc-0 (postgres:11.7)",
        ),
        (
            _pod(
                initContainerStatuses=[{"name": "svc-0", "started": True}],
                containerStatuses=[
                    {"name": "build", "state": {"waiting": {"reason": "ContainerCreating"}}}
                ],
            ),
            "pulling or starting ruby:2.6",
        ),
        (
            _pod(containerStatuses=[{"name": "build", "state": {"running": {}}}]),
            "running the script",
        ),
    ],
)
def test_progress(pod: Json | None, line: str) -> None:
    assert st.progress(_job(phase="Pending"), pod) == line


def test_build_started() -> None:
    assert not st.build_started(None)
    assert st.build_started(
        _pod(containerStatuses=[{"name": "build", "state": {"terminated": {}}}])
    )


def test_event_lines_once_each_in_order() -> None:
    events = [
        {
            "metadata": {"uid": "b"},
            "reason": "Started",
            "count": 1,
            "message": "Started container postgres",
            "lastTimestamp": "2026-12-01T10:00:02Z",
        },
        {
            "metadata": {"uid": "a"},
            "reason": "Pulling",
            "count": 1,
            "message": 'Pulling image "ruby:2.6"',
            "lastTimestamp": "2026-12-01T10:00:01Z",
        },
        {"metadata": {"uid": "c"}, "reason": "Created", "count": 1, "message": "Created"},
    ]
    seen: set[str] = set()
    assert st.event_lines(events, seen) == [
        'Pulling image "ruby:2.6"',
        "Started container postgres",
    ]
    assert st.event_lines(events, seen) == []


def test_progress_says_cloning_then_moves_on() -> None:
    job = _job(phase="Pending")
    job["spec"] = {"source": {"git": {"url": "https://git.example.com/g/p.git"}}}
    running = _pod(initContainerStatuses=[{"name": "clone", "state": {"running": {}}}])
    assert st.progress(job, running) == "cloning https://git.example.com/g/p.git"
    done = _pod(
        initContainerStatuses=[
            {"name": "clone", "state": {"terminated": {"exitCode": 0}}},
            {"name": "svc-0", "started": False, "state": {"running": {}}},
        ]
    )
    assert st.progress(job, done) == "starting service svc-0 (postgres:11.7)"
