"""What the reconciler keeps in memory: only what an unfinished job still needs."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from cijob.config import OperatorConfig
from cijob.kube import Kube
from cijob.reconcile import Reconciler
from cijob.render import names


def _reconciler() -> Reconciler:
    # No API call may happen: a Kube that is not one fails loudly if used.
    return Reconciler(cast(Kube, object()), OperatorConfig(), lambda *_: None, operator_env={})


def _pod(job: str, attempt: int = 1) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": names.pod_name(job, attempt),
            "labels": names.pod_labels(job, attempt),
        },
        "status": {"phase": "Succeeded"},
    }


def test_pods_of_jobs_it_does_not_follow_are_not_kept() -> None:
    # A finished job's pod, or a pod listed before its job at start-up: the job's own
    # reconcile reads it when it needs it.
    r = _reconciler()
    asyncio.run(r.pod_event(None, _pod("done")))
    asyncio.run(r.pod_event("MODIFIED", _pod("done")))
    assert r.pods == {}
    assert r.deleted_pods == set()


def test_pods_without_the_job_label_are_ignored() -> None:
    r = _reconciler()
    pod = _pod("x")
    pod["metadata"]["labels"] = {}
    asyncio.run(r.pod_event("ADDED", pod))
    assert r.pods == {}
