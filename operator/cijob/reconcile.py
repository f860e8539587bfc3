"""The control loop: from what was observed of a job and its pods, to the few writes it needs.

The states and their rules are in docs/lifecycle.md; the watch cache, timers, refusals and
credentials each live in a module of their own, and this one only coordinates them."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cijob import api
from cijob.archive.archiver import Archiver
from cijob.archive.offers import archiver, offer_ended
from cijob.cache import GONE, Cache, Key
from cijob.config import OperatorConfig
from cijob.credentials.pull import ensure_pull_secret, pull_credentials
from cijob.durations import parse_duration
from cijob.errors import JobError
from cijob.job import Job, job_from_body
from cijob.kube import Kube, KubeError, NameTaken, NotLeader
from cijob.lifecycle import status as st
from cijob.lifecycle.limits import within_limits
from cijob.lifecycle.observe import Observation, done, observe_pod, parse_time, started, stopping
from cijob.lifecycle.queueing import HELD_REASON, Jobs, Line, held_message
from cijob.lifecycle.refusals import classify
from cijob.lifecycle.retry import should_retry
from cijob.metrics import DISABLED, Metrics
from cijob.ownership import describe, held_by_a_cijob, is_controlled_by
from cijob.render import names
from cijob.render.pod import get_pod, images_of
from cijob.services.lookup import PortLookup
from cijob.services.watch import failure_events, observe_services
from cijob.source.secret import check_source_secret
from cijob.timers import Backoff, Timers
from cijob.tracking import ENDED, Tracking
from cijob.workqueue import WorkQueue

log = logging.getLogger("cijob")

Body = Mapping[str, Any]
EventSink = Callable[[Body, str, str, str], None]
Event = tuple[str, str, str]
# How often a pod being stopped is looked at again if no event comes (its grace period).
STOP_RECHECK_SECONDS = 5.0
# How often the cache is compared with the API server, for deletions a watch gap hid.
RESYNC_SECONDS = 300.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Reconciler:
    """Keeps the newest of what the watches showed, and makes each job's writes from it.

    The watches only record objects and queue their job's key; `config.workers` workers reconcile
    the queued keys, never two on one job (the sample-controller's shape)."""

    kube: Kube
    config: OperatorConfig
    events: EventSink
    operator_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    namespaces: Sequence[str] = ()
    cache: Cache = field(default_factory=Cache)
    queue: WorkQueue[Key] = field(default_factory=WorkQueue)
    backoff: Backoff[Key] = field(default_factory=Backoff)
    ports: PortLookup = field(default_factory=PortLookup)
    metrics: Metrics = DISABLED
    tracking: Tracking = field(default_factory=Tracking)
    timers: Timers[Key] = field(init=False)
    line: Line = field(init=False)
    archive: Archiver | None = field(init=False)

    def __post_init__(self) -> None:
        self.timers = Timers(self.queue.add)
        self.line = Line(self.config.maxRunningJobsPerNamespace)
        self.archive = archiver(
            self.config, self.kube, self.events, self.queue.add, self.metrics.archive_given_up
        )
        if self.metrics.enabled:
            self.queue.on_taken = self.metrics.queued
            self.metrics.watch(lambda: self.queue.depth, lambda: len(self.line.held))

    # -- what the watches show -------------------------------------------------------------

    def job_event(self, event_type: str | None, body: Body) -> None:
        key = self.cache.job_seen(event_type, body)
        if event_type == "DELETED":
            meta = body["metadata"]
            if (meta["namespace"], meta["name"]) not in self.cache.jobs:
                self._drop((meta["namespace"], meta["name"]))
            if self.archive is not None:
                self.archive.forget(meta.get("uid", ""))
            return
        if key is not None:
            # A job without a pod yet goes first: starting work is what a user waits on most.
            self.queue.add(key, urgent=not self.cache.status(body).get("attempt"))

    def pod_event(self, event_type: str | None, body: Body) -> None:
        key = self.cache.pod_seen(event_type, body)
        if key is not None:
            self.queue.add(key)
        held = self.tracking.pod_seen(event_type, body)
        if held is not None:
            self.queue.add(held)

    def _drop(self, key: Key) -> None:
        self.timers.cancel(key)
        self.backoff.forget(key)
        self._free_slot(key)

    # -- the workers -----------------------------------------------------------------------

    async def work(self) -> None:
        """Reconciles queued jobs until cancelled, and resyncs the cache now and then."""
        workers = [self._worker() for _ in range(self.config.workers)]
        archive = [self.archive.run()] if self.archive is not None else []
        await asyncio.gather(self._resync_forever(), *workers, *archive)

    async def _worker(self) -> None:
        while True:
            await self._process(await self.queue.get())

    async def drain(self) -> None:
        """Reconciles every queued job, in this task: what the workers do, for tests."""
        while (key := self.queue.get_nowait()) is not None:
            await self._process(key)

    async def _process(self, key: Key) -> None:
        began, failed = time.perf_counter(), False
        try:
            await self.reconcile(key)
        except NotLeader:
            log.info("not reconciling CiJob %s/%s: this replica no longer leads", *key)
        except Exception as exc:
            failed = True
            delay = self.backoff.when(key)
            log.warning(
                "reconciling CiJob %s/%s failed, again in %.1f s: %s",
                *key,
                delay,
                exc,
                exc_info=not isinstance(exc, KubeError),
            )
            self.timers.schedule(key, delay)
        finally:
            self.queue.done(key)
            self.metrics.reconciled(time.perf_counter() - began, failed)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            try:
                await self.resync()
            except Exception as exc:
                log.warning("resync failed, again in %.0f s: %s", RESYNC_SECONDS, exc)

    async def resync(self) -> None:
        """Drops what the API server no longer has: deletions a watch gap never showed."""
        held = self.cache.snapshot()
        jobs: set[str] = set()
        pods: set[str] = set()
        for ns in self.namespaces or [""]:
            prefix = f"/api/v1/namespaces/{ns}" if ns else "/api/v1"
            group = f"/apis/{api.GROUP}/{api.VERSION}" + (f"/namespaces/{ns}" if ns else "")
            jobs |= await self.kube.list_uids(f"{group}/{api.PLURAL}")
            pods |= await self.kube.list_uids(f"{prefix}/pods", names.JOB_LABEL)
        for key in self.cache.prune(held, jobs, pods):
            self._drop(key)

    # -- one job ---------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        body = self.cache.jobs.get(key)
        if body is None:
            await self._release(key)  # pods of a job that ended or went
            return
        try:
            await self._reconcile(key, body)
        except JobError as exc:
            status = self.cache.status(body)
            await self._set(body, status, "Failed", exc.reason, exc.message)
        archiving = self.archive is not None and await self._archive(key, body)
        status = self.cache.status(body)
        if st.is_terminal(status):
            # A deadline or image-pull recheck of the running job is moot now; only
            # ttlSecondsAfterFinished can still need the job, and only for its timer.
            self.timers.cancel(key)
            self.backoff.forget(key)
            self._free_slot(key)
            if archiving:
                return  # the archive wakes the job when it is done; the ttl waits for it
            await self._expire(key, body, status, _now())
            if key not in self.timers:
                self.cache.forget(key, body)
        await self._release(key)

    async def _release(self, key: Key) -> None:
        """Lets the deleted pods of `key` go once their attempts are in the status."""
        if key not in self.tracking:
            return
        body = self.cache.jobs.get(key)

        def known(uid: str) -> Body | None:
            if uid in self.cache.finished:
                return ENDED
            if body is not None and body["metadata"].get("uid") == uid:
                return self.cache.status(body)
            return None

        await self.tracking.release(self.kube, key, known)

    async def _archive(self, key: Key, body: Body) -> bool:
        """Hands the archive the job's ended pods, writes what it archived (docs/logs.md);
        whether the job still waits on it."""
        assert self.archive is not None
        uid, status = body["metadata"].get("uid", ""), self.cache.status(body)
        await offer_ended(self.archive, self.cache, self.kube, key, uid, status)
        await self._write(body, status, dict(status))
        return self.archive.pending(uid, self.cache.status(body))

    async def _reconcile(self, key: Key, body: Body) -> None:
        status = self.cache.status(body)
        if st.is_terminal(status):
            return  # what a finished job still needs is reconcile()'s
        job = job_from_body(body)
        now = _now()
        attempt = status.get("attempt") or 0
        pod = await self._attempt_pod(key, job, attempt) if attempt else None
        if job.spec.cancel:
            if pod is not None:
                await self._stop(job, pod, "Canceled", "canceled by spec.cancel")
            canceled = ("Normal", "Canceled", "the job was canceled")
            message = "canceled by spec.cancel"
            exit_code = status.get("exitCode")
            await self._set(
                body, status, "Canceled", "Canceled", message, [canceled], exit_code=exit_code
            )
            return
        if attempt == 0 or st.current_attempt_ended(status):
            if pod is not None and not done(pod):
                # At most one attempt runs: the next starts once this pod has ended.
                record = (status.get("attempts") or [{}])[-1]
                await self._stop(job, pod, record.get("reason") or "Retrying", "retried")
                self.timers.schedule(key, STOP_RECHECK_SECONDS)
                return
            if attempt == 0 and await self._held(key, body, status):
                return
            await self._start(key, body, job, status, attempt + 1, now)
            return
        obs = (
            observe_pod(pod, now, self.config.imagePullGraceSeconds)
            if pod is not None
            else Observation("Failed", "PodDeleted", "the pod was deleted before the job finished")
        )
        if pod is not None:
            pod, obs = await self._limited(job, pod, obs, now, status)
            obs = observe_services(pod, obs, self.config.servicesWaitTimeoutSeconds, now)
        if not obs.terminal:
            new = st.from_observation(status, obs, job.generation, now)
            await self._write(
                body, status, new, failure_events(status.get("services"), new["services"])
            )
            if obs.recheck_after is not None:
                self.timers.schedule(key, obs.recheck_after)
            return
        alive = pod is not None and not done(pod)
        if alive and pod is not None:
            await self._stop(job, pod, obs.reason or "Failed", obs.message or "")
        if obs.phase == "Failed" and should_retry(
            obs.reason, attempt, job.spec.retry, obs.exit_code
        ):
            attempts = [*(status.get("attempts") or []), st.attempt_record(status, obs)]
            retrying = (
                "Warning",
                "Retrying",
                f"attempt {attempt} failed ({obs.reason}: {obs.message}); "
                f"starting attempt {attempt + 1}",
            )
            if not alive:
                await self._start(key, body, job, status, attempt + 1, now, attempts, [retrying])
                return
            message = (
                f"attempt {attempt} failed ({obs.reason}); attempt {attempt + 1} "
                f"starts once pod {status.get('podName')} has stopped"
            )
            await self._set(
                body, status, "Pending", "Retrying", message, [retrying], attempts=attempts
            )
            self.timers.schedule(key, STOP_RECHECK_SECONDS)
            return
        new = st.from_observation(status, obs, job.generation, now)
        await self._write(
            body, status, new, failure_events(status.get("services"), new["services"])
        )

    async def _limited(
        self, job: Job, pod: Body, obs: Observation, now: datetime, status: Mapping[str, Any]
    ) -> tuple[Body, Observation]:
        """The attempt's limits applied. Where the clock, not the pod, ends the attempt, the
        pod is read afresh first: a watch lagging behind an overloaded API server may not show
        yet that it has ended (a green job reported Timeout, in the chaos suite)."""
        timeout = parse_duration(job.spec.timeout or self.config.defaults.timeout)
        bound = self.config.pendingTimeoutSeconds
        limited = within_limits(pod, obs, timeout, bound, now, status)
        if obs.terminal or not limited.terminal:
            return pod, limited
        fresh = await self.kube.get_pod(job.namespace, pod["metadata"]["name"])
        if fresh is None or fresh["metadata"].get("uid") != pod["metadata"].get("uid"):
            return pod, limited
        seen = observe_pod(fresh, now, self.config.imagePullGraceSeconds)
        return fresh, within_limits(fresh, seen, timeout, bound, now, status)

    async def _attempt_pod(self, key: Key, job: Job, attempt: int) -> Body | None:
        """The attempt's pod if it is the job's own; None when it is gone or never was."""
        pod = self.cache.attempt_pod(key, job.uid, attempt)
        if pod is GONE:
            return None
        if pod is None:
            # Not seen by the watch yet (the operator just started): ask once.
            fetched = await self.kube.get_pod(job.namespace, names.pod_name(job.name, attempt))
            if fetched is None or not is_controlled_by(fetched, job.uid):
                return None
            self.cache.pods[(job.namespace, fetched["metadata"]["name"])] = fetched
            return fetched
        return pod

    async def _stop(self, job: Job, pod: Body, reason: str, message: str) -> None:
        """Ends an attempt's pod at once, keeping its log: a started pod's deadline is lowered
        (the kubelet then ends it and keeps it); a pod no kubelet started is deleted."""
        meta = pod["metadata"]
        if done(pod) or stopping(pod) or meta.get("deletionTimestamp"):
            return
        if not started(pod):
            await self.kube.delete_pod(job.namespace, meta["name"], meta["uid"])
            return
        annotations = {
            names.STOP_REASON_ANNOTATION: reason,
            names.STOP_MESSAGE_ANNOTATION: message[:1024],
        }
        await self.kube.stop_pod(job.namespace, meta["name"], meta["uid"], annotations)

    async def _start(
        self,
        key: Key,
        body: Body,
        job: Job,
        status: Mapping[str, Any],
        attempt: int,
        now: datetime,
        attempts: list[dict[str, Any]] | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        """Creates the attempt's Secret and Pod, then records the attempt in the status; or
        says in the status why it cannot (yet)."""
        name = names.pod_name(job.name, attempt)
        pod = self.cache.attempt_pod(key, job.uid, attempt)
        if pod is GONE:
            # This attempt's pod was made, and deleted before its status write landed: one pod
            # per attempt, so it is recorded as made, and its next look finds it deleted.
            new = st.build(
                status, phase="Pending", generation=job.generation, now=now, attempt=attempt,
                pod_name=name, attempts=attempts,
            )  # fmt: skip
            await self._write(body, status, new, events)
            self.queue.add(key)
            return
        try:
            # A pod already there is an earlier create whose status write was lost: recorded.
            created, pod, notes = (
                (False, pod, []) if pod is not None else await self._create(job, attempt, now)
            )
        except NameTaken as taken:
            await self._name_taken(key, body, job, status, taken.kind, taken.holder, attempts)
            return
        except NotLeader:
            raise
        except KubeError as exc:
            refusal = classify(exc.status, exc.message)
            if not refusal.transient:
                message = f"the API server refused pod {name}: {refusal.message}"
                await self._set(
                    body, status, "Failed", refusal.reason, message, events, attempts=attempts
                )
                return
            await self._wait(key, body, job, status, refusal.reason, refusal.message, attempts)
            return
        if pod is None:
            self.timers.schedule(key, self.backoff.when(key))  # the name was freed meanwhile
            return
        if not created and not is_controlled_by(pod, job.uid):
            await self._name_taken(key, body, job, status, "Pod", pod, attempts)
            return
        self.backoff.forget(key)
        if created:
            self.metrics.pod_created(body, attempt, now)
        self.cache.pods[(job.namespace, name)] = pod
        self.cache.deleted_pods.pop((job.namespace, name), None)
        new = st.build(
            status,
            phase="Pending",
            generation=job.generation,
            now=now,
            attempt=attempt,
            pod_name=name,
            attempts=attempts,
            images=[{"container": c, "image": i} for c, i in images_of(job, self.config)],
        )
        await self._write(body, status, new, [*events, *notes])

    async def _held(self, key: Key, body: Body, status: Mapping[str, Any]) -> bool:
        """maxRunningJobsPerNamespace: whether the job must wait for a slot (it then says so,
        in one write); a job that may start takes its slot here."""
        limit = self.line.limit
        if limit is None or self.line.admit(key, self._jobs_of(key[0])):
            return False
        message = held_message(key[0], limit)
        await self._set(body, status, "Pending", HELD_REASON, message, waiting=True)
        return True

    def _free_slot(self, key: Key) -> None:
        """The job ended or went: wake the held jobs of its namespace that may start now."""
        if self.line.limit is None:
            return
        self.line.release(key)
        for waiting in self.line.next_up(key[0], self._jobs_of(key[0])):
            self.queue.add(waiting, urgent=True)

    def _jobs_of(self, namespace: str) -> Jobs:
        jobs = self.cache.jobs.items()
        return {k: (b, self.cache.status(b)) for k, b in jobs if k[0] == namespace}

    async def _create(
        self, job: Job, attempt: int, now: datetime
    ) -> tuple[bool, Body | None, list[Event]]:
        """(created, pod, Normal events about services without a probe)."""
        await check_source_secret(self.kube, job)
        creds = await pull_credentials(self.kube, job, self.config, self.operator_env)
        pull_secret = await ensure_pull_secret(
            self.kube, job, self.config, self.operator_env, creds
        )
        ports, notes = await self.ports.resolve(job, self.config, creds)
        manifest = get_pod(job, attempt, self.config, pull_secret, ports, started_at=now)
        created, pod = await self.kube.create_pod(job.namespace, manifest)
        return created, pod, notes

    async def _name_taken(
        self,
        key: Key,
        body: Body,
        job: Job,
        status: Mapping[str, Any],
        kind: str,
        holder: Body,
        attempts: list[dict[str, Any]] | None,
    ) -> None:
        """An earlier CiJob's object is waited for (its garbage collection frees the name);
        anything else holding the name never will, and the job fails naming it."""
        what = describe(kind, holder)
        if held_by_a_cijob(holder):
            message = f"{what} still exists; waiting for it to be deleted"
            await self._wait(key, body, job, status, "ObjectNameInUse", message, attempts)
            return
        message = f"{what} has the name this job needs; it is not the job's and is left alone"
        await self._set(body, status, "Failed", "NameConflict", message, attempts=attempts)

    async def _wait(
        self,
        key: Key,
        body: Body,
        job: Job,
        status: Mapping[str, Any],
        reason: str,
        message: str,
        attempts: list[dict[str, Any]] | None,
    ) -> None:
        """Pending, saying what for, tried again with backoff; failed once it waited too long."""
        now = _now()
        since = parse_time(st.waiting_since(status)) or now
        bound = self.config.pendingTimeoutSeconds
        if (now - since).total_seconds() >= bound:
            why = f"waited {bound} s for the job to start: {reason}: {message}"
            await self._set(body, status, "Failed", "PendingTimeout", why, attempts=attempts)
            return
        new = st.build(
            status,
            phase="Pending",
            generation=job.generation,
            now=now,
            reason=reason,
            message=message,
            attempts=attempts,
            waiting=True,
        )
        events: list[Event] = []
        if status.get("reason") != reason:
            events.append(("Warning", reason, message))
        await self._write(body, status, new, events)
        self.timers.schedule(key, self.backoff.when(key))

    async def _expire(self, key: Key, body: Body, status: Mapping[str, Any], now: datetime) -> None:
        """ttlSecondsAfterFinished: delete the finished job once its time is up."""
        ttl = (body.get("spec") or {}).get("ttlSecondsAfterFinished")
        finished = parse_time(status.get("completionTime"))
        if ttl is None or finished is None:
            return
        left = finished.timestamp() + ttl - now.timestamp()
        if left > 0:
            self.timers.schedule(key, left)
            return
        await self.kube.delete_job(key[0], key[1], body["metadata"].get("uid", ""))

    async def _set(
        self,
        body: Body,
        old: Mapping[str, Any],
        phase: str,
        reason: str,
        message: str,
        events: Sequence[Event] = (),
        **fields: Any,
    ) -> None:
        """Writes the status `phase` with its reason and message (and any other fields)."""
        generation = int(body["metadata"].get("generation") or 1)
        new = st.build(
            old, phase=phase, generation=generation, now=_now(), reason=reason, message=message,
            **fields,
        )  # fmt: skip
        await self._write(body, old, new, events)

    async def _write(
        self,
        body: Body,
        old: Mapping[str, Any],
        new: dict[str, Any],
        events: Sequence[Event] = (),
    ) -> None:
        """One status write per real transition; its events only once it has landed."""
        meta = body["metadata"]
        if self.archive is not None:
            new = self.archive.place(meta.get("uid", ""), old, new)
        if not st.changed(old, new):
            return
        await self.kube.patch_status(meta["namespace"], meta["name"], meta.get("uid", ""), new)
        self.cache.wrote(meta.get("uid", ""), new)
        self.metrics.status_written(body, old, new, _now())
        if self.archive is not None:
            self.archive.landed(meta.get("uid", ""), new)
        for event in events:
            self.events(body, *event)
        if st.is_terminal(new) and new.get("reason") not in (None, "Canceled"):
            self.events(body, "Warning", new["reason"], new.get("message") or new["reason"])
