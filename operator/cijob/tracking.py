"""The tracking finalizer: a deleted pod of a job stays until its attempt is in the job's status."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cijob.lifecycle import status as st
from cijob.ownership import controller_of, held_by_a_cijob
from cijob.render import names

Key = tuple[str, str]
Body = Mapping[str, Any]
# What `known` answers for a job that ended and left the cache: its outcome is final.
ENDED: Body = {"phase": "Ended"}


class PodReleaser(Protocol):
    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def release_pod(self, namespace: str, name: str, uid: str) -> None: ...


def tracked(pod: Body) -> bool:
    """The pod carries the operator's tracking finalizer."""
    return names.TRACKING_FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or [])


def held(pod: Body) -> bool:
    """Deleted, and kept by the tracking finalizer: a CiJob's pod waiting to be accounted for."""
    meta = pod.get("metadata") or {}
    return bool(meta.get("deletionTimestamp")) and tracked(pod) and held_by_a_cijob(pod)


def attempt_of(pod: Body) -> int | None:
    """The attempt the pod ran, from its label (or its name, `<job>-<attempt>`)."""
    meta = pod.get("metadata") or {}
    label = (meta.get("labels") or {}).get(names.ATTEMPT_LABEL, "")
    if label.isdigit():
        return int(label)
    owner = controller_of(pod) or {}
    return names.attempt_of(str(meta.get("name", "")), str(owner.get("name", "")))


def accounted(attempt: int | None, status: Body) -> bool:
    """Whether the job's status holds the outcome of `attempt`: a later attempt began, its
    record is in `attempts`, or the job has ended (and nothing will record anything more)."""
    if status is ENDED or st.is_terminal(status):
        return True
    current = status.get("attempt") or 0
    if attempt is None or attempt > current:
        return False
    return attempt < current or st.current_attempt_ended(status)


def releasable(pod: Body, job: Body | None, status: Body) -> bool:
    """The pod's finalizer may go: its job (by controller owner uid) is gone, or the job's
    `status` accounts for the pod's attempt. `job` is the CiJob of that name, None if none."""
    owner = str((controller_of(pod) or {}).get("uid", ""))
    meta = {} if job is None else job.get("metadata") or {}
    if meta.get("uid") != owner or meta.get("deletionTimestamp"):
        return True  # the job is gone, or going (a foreground deletion waits for its pods)
    return accounted(attempt_of(pod), status)


@dataclass
class Tracking:
    """The held pods by job key (namespace, CiJob name), each released once accounted for."""

    pods: dict[Key, dict[str, Body]] = field(default_factory=dict)

    def pod_seen(self, event_type: str | None, pod: Body) -> Key | None:
        """Records a pod event; the job key to reconcile when the pod is held."""
        meta = pod["metadata"]
        owner = controller_of(pod)
        if owner is None:
            return None
        key = (str(meta.get("namespace", "")), str(owner.get("name", "")))
        uid = str(meta.get("uid", ""))
        if event_type == "DELETED" or not held(pod):
            waiting = self.pods.get(key)
            if waiting is not None:
                waiting.pop(uid, None)
                if not waiting:
                    del self.pods[key]
            return None
        self.pods.setdefault(key, {})[uid] = pod
        return key

    def __contains__(self, key: Key) -> bool:
        return key in self.pods

    async def release(
        self, kube: PodReleaser, key: Key, known: Callable[[str], Body | None]
    ) -> None:
        """Removes the finalizer from each held pod of `key` that may go. `known(uid)` is the
        status this operator holds of the job with that uid, ENDED for one that ended, None
        when it holds none: then the API server says whether the job is still there."""
        fetched: dict[str, Any] | None = None
        asked = False
        for uid, pod in list(self.pods.get(key, {}).items()):
            owner = str((controller_of(pod) or {}).get("uid", ""))
            status = known(owner)
            job: Body | None = {"metadata": {"uid": owner}}
            if status is None:
                if not asked:
                    fetched, asked = await kube.get_job(*key), True
                job, status = fetched, (fetched or {}).get("status") or {}
            if not releasable(pod, job, status):
                continue
            await kube.release_pod(key[0], pod["metadata"]["name"], uid)
            self.pods.get(key, {}).pop(uid, None)
        if not self.pods.get(key, True):
            del self.pods[key]
