"""kopf's settings for an operator made of event handlers only."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import kopf

from cijob.render import names


class NoDiffBase(kopf.DiffBaseStorage):
    """Keeps no diff base: only change handlers (on.create/update) read one, and there are none.

    kopf's default deep-copies every object on every event to build an essence nobody reads:
    7% of the operator's CPU under load (bench/README.md)."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


# The initial listing in pages: 10 000 stored CiJobs are never all in memory at once.
LIST_CHUNK = 500


# kopf's per-object worker waits this long for the object's next event, holding its last one,
# before it exits. The handlers return at once, so a worker is cheap to start again; kopf's
# default (5 s) kept every listed object's body alive: a fresh operator over 3000 finished
# CiJobs peaked at 239 MB with it, 106 MB with this (bench/README.md).
IDLE_WORKER_SECONDS = 0.1


def configure(settings: kopf.OperatorSettings) -> None:
    settings.scanning.disabled = True  # no CRD or namespace scans: no RBAC for them
    # Only our own events reach the API: they go through the Kube client, whose writes the
    # leader Lease fences; kopf's own poster would not be.
    settings.posting.enabled = False
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.chunk_size = LIST_CHUNK
    # The handler's label filter is client-side: without this, every pod of the watched
    # namespaces would be sent to the operator and decoded.
    settings.watching.label_selectors["v1", "pods"] = names.JOB_LABEL
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.queueing.idle_timeout = IDLE_WORKER_SECONDS
