"""What the reconciler hands the archiver: the job's ended pods, from the cache or read once."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from cijob.archive.archiver import Archiver, EventSink, Key
from cijob.cache import GONE, Cache
from cijob.config import OperatorConfig
from cijob.kube import Kube
from cijob.ownership import is_controlled_by
from cijob.render import names

Body = Mapping[str, Any]


def archiver(
    config: OperatorConfig,
    kube: Kube,
    events: EventSink,
    wake: Callable[[Key], None],
    given_up: Callable[[int], None] = lambda containers: None,
    env: Mapping[str, str] = os.environ,
) -> Archiver | None:
    """The archiver of `config.logArchive`, or None when the operator keeps no archive."""
    if config.logArchive is None:
        return None
    namespace = env.get("POD_NAMESPACE", "default")
    return Archiver(config.logArchive, kube, events, wake, namespace, given_up=given_up)


async def offer_ended(
    archive: Archiver, cache: Cache, kube: Kube, key: Key, uid: str, status: Mapping[str, Any]
) -> None:
    """Offers each ended attempt the archive has nothing of: its pod as the watch last
    showed it, else as the API server has it now (a restarted operator), else None (gone)."""
    for attempt in archive.wanted(uid, status):
        pod = cache.attempt_pod(key, uid, attempt)
        if pod is None:
            pod = await kube.get_pod(key[0], names.pod_name(key[1], attempt))
            pod = pod if pod is not None and is_controlled_by(pod, uid) else None
        archive.offer(key, uid, attempt, None if pod is GONE else pod)
