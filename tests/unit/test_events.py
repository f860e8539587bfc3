"""Events on CiJobs: what kubectl describe shows, posted without holding up a reconcile."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from cijob.events import MAX_MESSAGE, EventPoster, get_event
from cijob.kube import Kube, KubeError

JOB = {
    "apiVersion": "cijob.dev/v1alpha1",
    "kind": "CiJob",
    "metadata": {"namespace": "ns", "name": "build", "uid": "u-1"},
}
NOW = datetime(2026, 11, 29, 8, 30, 5, 123456, tzinfo=UTC)


def test_event_refers_to_the_cijob_in_its_namespace() -> None:
    event = get_event(JOB, "Warning", "ImagePullBackOff", "cannot pull alpine:3", NOW)
    assert event["metadata"] == {"generateName": "build.", "namespace": "ns"}
    assert event["involvedObject"] == {
        "apiVersion": "cijob.dev/v1alpha1",
        "kind": "CiJob",
        "name": "build",
        "namespace": "ns",
        "uid": "u-1",
    }
    assert (event["type"], event["reason"], event["message"]) == (
        "Warning",
        "ImagePullBackOff",
        "cannot pull alpine:3",
    )
    assert event["source"] == {"component": "cijob-operator"}
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-11-29T08:30:05Z"
    assert event["count"] == 1


def test_a_body_without_kind_is_still_a_cijob() -> None:
    event = get_event({"metadata": JOB["metadata"]}, "Normal", "Canceled", "", NOW)
    assert event["involvedObject"]["kind"] == "CiJob"
    assert event["involvedObject"]["apiVersion"] == "cijob.dev/v1alpha1"


def test_a_long_message_keeps_its_start_and_end_within_the_limit() -> None:
    message = "start " + "x" * 5000 + " end"
    event = get_event(JOB, "Warning", "Failed", message, NOW)
    assert len(event["message"]) <= MAX_MESSAGE
    assert event["message"].startswith("start ") and event["message"].endswith(" end")
    assert "..." in event["message"]


class _Kube:
    def __init__(self, fail: bool = False) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    async def create_event(self, namespace: str, event: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        if self.fail:
            raise KubeError("create event Failed", 403, b"forbidden")
        self.posted.append((namespace, event))


def test_events_are_posted_in_the_background() -> None:
    async def go() -> list[tuple[str, dict[str, Any]]]:
        kube = _Kube()
        poster = EventPoster(cast(Kube, kube))
        poster(JOB, "Warning", "Retrying", "attempt 1 failed")
        assert kube.posted == []  # not yet: the caller did not wait for it
        await poster.close()
        assert not poster.pending
        return kube.posted

    posted = asyncio.run(go())
    assert [(ns, e["reason"]) for ns, e in posted] == [("ns", "Retrying")]


def test_an_event_that_cannot_be_posted_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> None:
        poster = EventPoster(cast(Kube, _Kube(fail=True)))
        poster(JOB, "Warning", "Retrying", "attempt 1 failed")
        await poster.close()

    with caplog.at_level(logging.WARNING, logger="cijob"):
        asyncio.run(go())
    assert "could not post event Retrying on CiJob ns/build" in caplog.text
