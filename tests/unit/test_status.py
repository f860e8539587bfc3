"""CiJob status documents built from observations, and when one is worth writing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cijob.lifecycle import status as st
from cijob.lifecycle.observe import Observation

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
IMAGES = [{"container": "build", "image": "ruby:2.6", "imageID": "docker.io/library/ruby@sha256:1"}]


def ts(seconds: float) -> str:
    return st.timestamp(T0 + timedelta(seconds=seconds))


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def started(attempt: int = 1, generation: int = 1) -> dict[str, Any]:
    """The status right after the operator created the attempt's pod."""
    return st.build(
        {},
        phase="Pending",
        generation=generation,
        now=T0,
        attempt=attempt,
        pod_name=f"rspec-{attempt}",
        images=[{"container": "build", "image": "ruby:2.6"}],
    )


def condition(status: dict[str, Any]) -> dict[str, Any]:
    [c] = status["conditions"]
    assert c["type"] == "Succeeded"
    result: dict[str, Any] = c
    return result


def test_timestamp_format() -> None:
    assert st.timestamp(T0) == "2025-03-01T12:00:00Z"


def test_first_status() -> None:
    status = started(generation=3)
    assert status["phase"] == "Pending"
    assert status["attempt"] == 1
    assert status["podName"] == "rspec-1"
    assert status["startTime"] == ts(0)
    assert status["completionTime"] is None
    assert status["observedGeneration"] == 3
    assert status["images"] == [{"container": "build", "image": "ruby:2.6"}]
    c = condition(status)
    assert c["status"] == "Unknown"
    assert c["observedGeneration"] == 3
    assert c["lastTransitionTime"] == ts(0)


def test_null_fields_are_written_so_merge_patches_clear_them() -> None:
    status = started()
    for key in ["reason", "message", "exitCode", "completionTime"]:
        assert key in status
        assert status[key] is None


def test_running_observation() -> None:
    obs = Observation("Running", start_time=ts(5), images=IMAGES)
    status = st.from_observation(started(), obs, 1, later(10))
    assert status["phase"] == "Running"
    assert status["attempt"] == 1
    assert status["podName"] == "rspec-1"
    assert status["images"] == IMAGES
    assert status["startTime"] == ts(0)  # the first attempt's start is kept
    assert status["completionTime"] is None
    assert condition(status)["status"] == "Unknown"


def test_start_time_from_the_observation_when_none_yet() -> None:
    obs = Observation("Running", start_time=ts(5))
    status = st.from_observation({"attempt": 1}, obs, 1, later(10))
    assert status["startTime"] == ts(5)


def test_succeeded_observation() -> None:
    obs = Observation("Succeeded", None, "script succeeded", 0, ts(5), ts(30), images=IMAGES)
    status = st.from_observation(started(), obs, 2, later(31))
    assert status["phase"] == "Succeeded"
    assert status["exitCode"] == 0
    assert status["completionTime"] == ts(30)
    assert status["observedGeneration"] == 2
    c = condition(status)
    assert c["status"] == "True"
    assert c["observedGeneration"] == 2
    assert st.is_terminal(status)


def test_failed_observation() -> None:
    obs = Observation("Failed", "ScriptFailure", "script exited with code 3", 3, ts(5), ts(30))
    status = st.from_observation(started(), obs, 1, later(31))
    assert (status["phase"], status["reason"], status["exitCode"]) == ("Failed", "ScriptFailure", 3)
    assert status["message"] == "script exited with code 3"
    c = condition(status)
    assert (c["status"], c["reason"], c["message"]) == (
        "False",
        "ScriptFailure",
        "script exited with code 3",
    )


def test_terminal_without_a_completion_time_gets_now() -> None:
    obs = Observation("Failed", "PodDeleted", "the pod was deleted before the job finished")
    status = st.from_observation(started(), obs, 1, later(50))
    assert status["completionTime"] == ts(50)


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Canceled"])
def test_terminal_phases_set_completion_time(phase: str) -> None:
    status = st.build(started(), phase=phase, generation=1, now=later(9))
    assert status["completionTime"] == ts(9)
    assert st.is_terminal(status)


def test_canceled() -> None:
    status = st.build(
        started(),
        phase="Canceled",
        generation=1,
        now=later(9),
        reason="Canceled",
        message="canceled by spec.cancel",
    )
    c = condition(status)
    assert (c["status"], c["reason"]) == ("False", "Canceled")


@pytest.mark.parametrize("phase", ["Pending", "Running"])
def test_non_terminal_phases_clear_completion_time(phase: str) -> None:
    old = {**started(), "phase": "Failed", "completionTime": ts(30)}
    status = st.build(old, phase=phase, generation=1, now=later(40), completion_time=ts(35))
    assert status["completionTime"] is None
    assert not st.is_terminal(status)


def test_attempts_are_kept() -> None:
    record = {"attempt": 1, "podName": "rspec-1", "phase": "Failed", "reason": "PodEvicted"}
    second = st.build(
        started(),
        phase="Pending",
        generation=1,
        now=later(60),
        attempt=2,
        pod_name="rspec-2",
        attempts=[record],
    )
    assert second["attempts"] == [record]
    assert second["attempt"] == 2
    assert second["podName"] == "rspec-2"
    running = st.from_observation(second, Observation("Running"), 1, later(70))
    assert running["attempts"] == [record]
    assert running["attempt"] == 2
    assert running["podName"] == "rspec-2"


def test_images_kept_when_the_observation_has_none() -> None:
    status = st.from_observation(started(), Observation("Pending"), 1, later(3))
    assert status["images"] == [{"container": "build", "image": "ruby:2.6"}]


def test_generation_follows_the_spec() -> None:
    status = st.from_observation(started(generation=1), Observation("Running"), 4, later(3))
    assert status["observedGeneration"] == 4
    assert condition(status)["observedGeneration"] == 4


# -- changed ---------------------------------------------------------------------------------


def test_same_observation_later_is_no_change() -> None:
    obs = Observation("Running", start_time=ts(5), images=IMAGES)
    first = st.from_observation(started(), obs, 1, later(10))
    again = st.from_observation(first, obs, 1, later(20))
    assert not st.changed(first, again)


def test_same_terminal_observation_later_is_no_change() -> None:
    obs = Observation("Failed", "ScriptFailure", "script exited with code 1", 1, ts(5), ts(30))
    first = st.from_observation(started(), obs, 1, later(31))
    again = st.from_observation(first, obs, 1, later(90))
    assert not st.changed(first, again)


def test_identical_statuses_are_no_change() -> None:
    assert not st.changed(started(), started())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("phase", "Running"),
        ("reason", "ScriptFailure"),
        ("message", "x"),
        ("exitCode", 1),
        ("attempt", 2),
        ("podName", "rspec-2"),
        ("images", IMAGES),
        ("attempts", [{"attempt": 1}]),
        ("completionTime", ts(1)),
        ("observedGeneration", 2),
    ],
)
def test_each_field_is_a_change(key: str, value: Any) -> None:
    old = started()
    assert st.changed(old, {**old, key: value})


def test_condition_time_alone_is_no_change() -> None:
    old = started()
    new = {**old, "conditions": [{**condition(old), "lastTransitionTime": ts(99)}]}
    assert not st.changed(old, new)


def test_a_start_time_while_pending_is_no_change_but_rides_on_running() -> None:
    pending = {**started(), "phase": "Pending", "attemptStartTime": None}
    assert not st.changed(pending, {**pending, "attemptStartTime": ts(3)})
    assert st.changed(pending, {**pending, "phase": "Running", "attemptStartTime": ts(3)})


def test_from_empty_is_a_change() -> None:
    assert st.changed({}, started())


def test_condition_transition_time_moves_only_when_its_status_changes() -> None:
    # Kubernetes conditions: lastTransitionTime is when `status` last changed. Pending to
    # Running keeps the Succeeded condition Unknown.
    pending = started()
    running = st.from_observation(pending, Observation("Running"), 1, later(10))
    assert condition(running)["status"] == "Unknown"
    assert condition(running)["lastTransitionTime"] == ts(0)
    done = st.from_observation(
        running, Observation("Succeeded", None, "ok", 0, ts(5), ts(30)), 1, later(31)
    )
    assert condition(done)["lastTransitionTime"] == ts(31)


# -- attempt records -------------------------------------------------------------------------


def test_attempt_record() -> None:
    obs = Observation(
        "Failed", "PodEvicted", "The node was low on resource: memory.", 137, ts(5), ts(30)
    )
    old = {**started(attempt=2), "attempts": [{"attempt": 1}]}
    assert st.attempt_record(old, obs) == {
        "attempt": 2,
        "podName": "rspec-2",
        "phase": "Failed",
        "reason": "PodEvicted",
        "message": "The node was low on resource: memory.",
        "exitCode": 137,
        "startTime": ts(5),
        "completionTime": ts(30),
    }


def test_attempt_record_drops_unknowns() -> None:
    obs = Observation("Failed", "PodDeleted", "the pod was deleted before the job finished")
    record = st.attempt_record(started(), obs)
    assert record == {
        "attempt": 1,
        "podName": "rspec-1",
        "phase": "Failed",
        "reason": "PodDeleted",
        "message": "the pod was deleted before the job finished",
    }


def test_is_terminal() -> None:
    assert not st.is_terminal({})
    assert not st.is_terminal({"phase": "Running"})
    for phase in ("Succeeded", "Failed", "Canceled"):
        assert st.is_terminal({"phase": phase})
