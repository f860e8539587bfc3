"""kopf glue: the watches feed the Reconciler; nothing is decided here."""

from __future__ import annotations

from typing import Any

import kopf

from cijob import api
from cijob.reconcile import Body, Reconciler
from cijob.render import names


def post_event(body: Body, type_: str, reason: str, message: str) -> None:
    """Queues a Kubernetes Event on the CiJob (kopf posts it in the background)."""
    target: Any = body  # a kopf.Body, or any mapping with the object's metadata
    kopf.event(target, type=type_, reason=reason, message=message)


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler) -> None:
    """Event handlers only: they keep no progress in the objects, so a job costs no writes
    beyond its pod and its status."""

    @kopf.on.event(api.GROUP, api.VERSION, api.PLURAL, registry=registry)
    async def cijob_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        await reconciler.job_event(type, body)

    @kopf.on.event("", "v1", "pods", labels={names.JOB_LABEL: kopf.PRESENT}, registry=registry)
    async def pod_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        await reconciler.pod_event(type, body)
