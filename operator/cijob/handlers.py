"""kopf glue: the watches feed the Reconciler's cache and queue; nothing is decided here."""

from __future__ import annotations

from typing import Any

import kopf

from cijob import api
from cijob.reconcile import Reconciler
from cijob.render import names


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler) -> None:
    """Event handlers only: they keep no progress in the objects, so a job costs no writes
    beyond its pod and its status. They return at once: the Reconciler's workers do the
    work, so kopf holds no event longer than it takes to record it."""

    @kopf.on.event(api.GROUP, api.VERSION, api.PLURAL, registry=registry)
    async def cijob_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        reconciler.job_event(type, body)

    @kopf.on.event("", "v1", "pods", labels={names.JOB_LABEL: kopf.PRESENT}, registry=registry)
    async def pod_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        reconciler.pod_event(type, body)
