"""Kubernetes Events on CiJobs: built by a pure function, posted in the background."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cijob import api
from cijob.kube import Kube

log = logging.getLogger("cijob")

COMPONENT = "cijob-operator"
# The API server refuses longer messages; the end of a message is as telling as its start.
MAX_MESSAGE = 1024


def get_event(
    body: Mapping[str, Any], type_: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    """A core/v1 Event about the CiJob `body`, as `kubectl describe cijob` lists it."""
    meta = body["metadata"]
    if len(message) > MAX_MESSAGE:
        half = (MAX_MESSAGE - 3) // 2
        message = f"{message[:half]}...{message[-half:]}"
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": body.get("apiVersion", api.API_VERSION),
            "kind": body.get("kind", api.KIND),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": COMPONENT},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventPoster:
    """The Reconciler's event sink: each event is posted in a task of its own, so a
    reconcile never waits on one, and an event that cannot be posted is only logged:
    events are for people, the CiJob's status is the record."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.pending: set[asyncio.Task[None]] = set()

    def __call__(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        event = get_event(body, type_, reason, message, datetime.now(UTC))
        task = asyncio.create_task(self._post(event))
        self.pending.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self.pending.discard)

    async def _post(self, event: dict[str, Any]) -> None:
        ref = event["involvedObject"]
        try:
            await self.kube.create_event(ref["namespace"], event)
        except Exception as exc:
            log.warning(
                "could not post event %s on CiJob %s/%s: %s",
                event["reason"],
                ref["namespace"],
                ref["name"],
                exc,
            )

    async def close(self) -> None:
        """Waits for the events still being posted."""
        await asyncio.gather(*self.pending, return_exceptions=True)
