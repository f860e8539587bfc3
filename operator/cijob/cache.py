"""The newest of what the watches showed, and what this operator wrote that they have not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cijob.lifecycle import status as st
from cijob.ownership import controller_of, is_controlled_by
from cijob.render import names

Key = tuple[str, str]
Body = Mapping[str, Any]
# What `attempt_pod` answers for a pod the watch saw deleted: not the same as "not seen yet".
GONE: Body = {}


@dataclass
class Cache:
    """Jobs by (namespace, name); pods by (namespace, name), with the uid of the job that
    controls them, so a pod of an earlier job of the same name is never taken for this one's."""

    jobs: dict[Key, Body] = field(default_factory=dict)
    pods: dict[Key, Body] = field(default_factory=dict)
    # (namespace, pod name) -> uid of the job whose pod of that name the watch saw deleted
    deleted_pods: dict[Key, str] = field(default_factory=dict)
    # job uid -> the status this operator wrote last and the watch has not shown back yet
    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    # uids of jobs that ended: later echoes of earlier writes must not wake them
    finished: set[str] = field(default_factory=set)

    def job_seen(self, event_type: str | None, body: Body) -> Key | None:
        """Records a CiJob event; the key to reconcile, or None when nothing is to be done."""
        meta = body["metadata"]
        key, uid = (meta["namespace"], meta["name"]), meta.get("uid", "")
        if event_type == "DELETED":
            if self.uid_of(key) == uid:
                self.jobs.pop(key, None)
            self.written.pop(uid, None)
            self.finished.discard(uid)
            return None
        if uid in self.finished:
            return None
        mine = self.written.get(uid)
        if mine is not None and not st.changed(body.get("status") or {}, mine):
            del self.written[uid]  # the watch caught up with our last write
        self.jobs[key] = body
        return key

    def pod_seen(self, event_type: str | None, body: Body) -> Key | None:
        """Records a pod event; the key of the job it concerns, or None."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        job_key = (meta["namespace"], (meta.get("labels") or {}).get(names.JOB_LABEL) or "")
        if job_key not in self.jobs:
            # A finished job's pod (or one seen before its job at start-up, which the job's
            # reconcile then reads once): keeping it would hold memory for nothing.
            self.pods.pop(key, None)
            return None
        if event_type == "DELETED":
            if self.pods.get(key, body)["metadata"].get("uid") == meta.get("uid"):
                self.pods.pop(key, None)
            owner = controller_of(body)
            if owner is not None:
                self.deleted_pods[key] = str(owner.get("uid", ""))
        else:
            self.pods[key] = body
            self.deleted_pods.pop(key, None)
        return job_key

    def uid_of(self, key: Key) -> str | None:
        body = self.jobs.get(key)
        return None if body is None else body["metadata"].get("uid", "")

    def attempt_pod(self, key: Key, job_uid: str, attempt: int) -> Body | None:
        """The job's own pod of `attempt` as last seen; GONE when the watch saw it deleted;
        None when not seen (or the pod of that name is another object's)."""
        pod_key = (key[0], names.pod_name(key[1], attempt))
        pod = self.pods.get(pod_key)
        if pod is not None and is_controlled_by(pod, job_uid):
            return pod
        if self.deleted_pods.get(pod_key) == job_uid:
            return GONE
        return None

    def status(self, body: Body) -> dict[str, Any]:
        """The newest status: ours if we wrote one the watch has not shown back yet (only
        this operator writes it, so what it wrote last is never older than the watch)."""
        mine = self.written.get(body["metadata"].get("uid", ""))
        return dict(mine) if mine is not None else dict(body.get("status") or {})

    def wrote(self, uid: str, status: dict[str, Any]) -> None:
        self.written[uid] = status

    def forget(self, key: Key, body: Body) -> None:
        """A finished job needs nothing more: keep memory flat however many are stored."""
        uid = body["metadata"].get("uid", "")
        attempts = (self.status(body).get("attempt") or 0) + 1
        self.finished.add(uid)
        self.jobs.pop(key, None)
        self.written.pop(uid, None)
        for attempt in range(1, attempts + 1):
            pod_key = (key[0], names.pod_name(key[1], attempt))
            self.pods.pop(pod_key, None)
            self.deleted_pods.pop(pod_key, None)

    def snapshot(self) -> tuple[set[str], set[str]]:
        """The uids of the jobs and pods held now: what a resync may prune."""
        jobs = {b["metadata"].get("uid", "") for b in self.jobs.values()}
        return jobs | set(self.written) | self.finished, {
            b["metadata"].get("uid", "") for b in self.pods.values()
        }

    def prune(
        self, held: tuple[set[str], set[str]], listed_jobs: set[str], listed_pods: set[str]
    ) -> list[Key]:
        """Drops what a watch gap left behind: of what was `held` before the listing, the
        jobs and pods it did not show. Returns the keys of the jobs dropped."""
        gone_jobs, gone_pods = held[0] - listed_jobs, held[1] - listed_pods
        keys = [k for k, b in self.jobs.items() if b["metadata"].get("uid", "") in gone_jobs]
        for key in keys:
            del self.jobs[key]
        for uid in gone_jobs:
            self.written.pop(uid, None)
            self.finished.discard(uid)
        for pod_key in [k for k, b in self.pods.items() if b["metadata"].get("uid") in gone_pods]:
            del self.pods[pod_key]
        live = {b["metadata"].get("uid", "") for b in self.jobs.values()}
        self.deleted_pods = {k: u for k, u in self.deleted_pods.items() if u in live}
        return keys
