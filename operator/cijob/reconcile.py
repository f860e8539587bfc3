"""The control loop: from what was observed of a job and its pods, to the few writes it needs."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cijob.config import OperatorConfig
from cijob.credentials import authconfig, helper, matching, secret, sources
from cijob.durations import parse_duration
from cijob.errors import InvalidSpec, JobError
from cijob.job import Job, job_from_body
from cijob.kube import Kube, KubeError
from cijob.lifecycle import status as st
from cijob.lifecycle.observe import Observation, observe_pod, parse_time
from cijob.lifecycle.retry import should_retry
from cijob.render import names
from cijob.render.pod import DOCKER_AUTH_CONFIG, get_pod, images_of
from cijob.workqueue import WorkQueue

log = logging.getLogger("cijob")

Key = tuple[str, str]
Body = Mapping[str, Any]
EventSink = Callable[[Body, str, str, str], None]
# A pod stuck before the kubelet enforces activeDeadlineSeconds (never scheduled, say) is
# failed by the operator this long after the job's own timeout.
DEADLINE_SLACK_SECONDS = 30
# A reconcile that failed (the API server unreachable, say) is tried again after this
# many seconds, doubled on each failure up to the maximum.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 60.0


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
    jobs: dict[Key, Body] = field(default_factory=dict)
    pods: dict[Key, Body] = field(default_factory=dict)
    deleted_pods: set[Key] = field(default_factory=set)
    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    timers: dict[Key, asyncio.TimerHandle] = field(default_factory=dict)
    queue: WorkQueue[Key] = field(default_factory=WorkQueue)
    failures: dict[Key, int] = field(default_factory=dict)
    # uids of jobs that ended: later echoes of earlier writes must not wake them.
    finished: set[str] = field(default_factory=set)

    # -- what the watches show -------------------------------------------------------------

    def job_event(self, event_type: str | None, body: Body) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        uid = body["metadata"].get("uid", "")
        if event_type == "DELETED":
            self.jobs.pop(key, None)
            self.written.pop(uid, None)
            self.finished.discard(uid)
            self.failures.pop(key, None)
            self._cancel_timer(key)
            return
        if uid in self.finished:
            return
        mine = self.written.get(body["metadata"].get("uid", ""))
        if mine is not None and not st.changed(body.get("status") or {}, mine):
            # The watch caught up with our last write.
            del self.written[body["metadata"]["uid"]]
        self.jobs[key] = body
        # A job without a pod yet goes first: starting work is what a user waits on most.
        self.queue.add(key, urgent=not self._status(body).get("attempt"))

    def pod_event(self, event_type: str | None, body: Body) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        job_name = (meta.get("labels") or {}).get(names.JOB_LABEL)
        job_key = (meta["namespace"], job_name or "")
        if job_key not in self.jobs:
            # A finished job's pod (or one seen before its job at start-up, which the job's
            # reconcile then reads once): keeping it would hold memory for nothing.
            self.pods.pop(key, None)
            return
        if event_type == "DELETED":
            self.pods.pop(key, None)
            self.deleted_pods.add(key)
        else:
            self.pods[key] = body
        self.queue.add(job_key)

    # -- the workers -----------------------------------------------------------------------

    async def work(self) -> None:
        """Reconciles queued jobs until cancelled."""
        await asyncio.gather(*(self._worker() for _ in range(self.config.workers)))

    async def _worker(self) -> None:
        while True:
            await self._process(await self.queue.get())

    async def drain(self) -> None:
        """Reconciles every queued job, in this task: what the workers do, for tests."""
        while (key := self.queue.get_nowait()) is not None:
            await self._process(key)

    async def _process(self, key: Key) -> None:
        try:
            await self._reconcile_or_retry(key)
        finally:
            self.queue.done(key)

    async def _reconcile_or_retry(self, key: Key) -> None:
        try:
            await self.reconcile(key)
        except Exception as exc:
            failures = self.failures.get(key, 0) + 1
            self.failures[key] = failures
            delay = min(RETRY_FIRST_SECONDS * 2 ** (failures - 1), RETRY_MAX_SECONDS)
            log.warning(
                "reconciling CiJob %s/%s failed, again in %.1f s: %s",
                *key,
                delay,
                exc,
                exc_info=not isinstance(exc, KubeError),
            )
            self._schedule(key, delay)
        else:
            self.failures.pop(key, None)

    # -- one job ---------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        body = self.jobs.get(key)
        if body is None:
            return
        try:
            await self._reconcile(key, body)
        except JobError as exc:
            await self._fail(key, body, self._status(body), exc.reason, exc.message)
        status = self._status(body)
        if st.is_terminal(status):
            # A deadline or image-pull recheck of the running job is moot now; only
            # ttlSecondsAfterFinished can still need the job, and only for its timer.
            self._cancel_timer(key)
            await self._expire(key, body, status, _now())
            if key not in self.timers:
                self._forget(key, body)

    def _forget(self, key: Key, body: Body) -> None:
        """A finished job needs nothing more: keep memory flat however many are stored."""
        uid = body["metadata"].get("uid", "")
        attempts = (self._status(body).get("attempt") or 0) + 1
        self.finished.add(uid)
        self.jobs.pop(key, None)
        self.failures.pop(key, None)
        self.written.pop(uid, None)
        for attempt in range(1, attempts + 1):
            pod_key = (key[0], names.pod_name(key[1], attempt))
            self.pods.pop(pod_key, None)
            self.deleted_pods.discard(pod_key)

    def _status(self, body: Body) -> dict[str, Any]:
        """The newest status: ours if we wrote one the watch has not shown back yet (only
        this operator writes it, so what it wrote last is never older than the watch)."""
        mine = self.written.get(body["metadata"].get("uid", ""))
        return dict(mine) if mine is not None else dict(body.get("status") or {})

    async def _reconcile(self, key: Key, body: Body) -> None:
        status = self._status(body)
        now = _now()
        if st.is_terminal(status):
            return  # what a finished job still needs is reconcile()'s
        job = job_from_body(body)
        if job.spec.cancel:
            await self._cancel(key, body, job, status, now)
            return
        attempt = status.get("attempt") or 0
        if attempt == 0:
            await self._start(key, body, job, status, 1, now)
            return
        pod_key = (job.namespace, names.pod_name(job.name, attempt))
        pod = self.pods.get(pod_key)
        if pod is None and pod_key not in self.deleted_pods:
            # Not seen by the watch yet (the operator just started): ask once.
            pod = await self.kube.get_pod(*pod_key)
            if pod is not None:
                self.pods[pod_key] = pod
        if pod is None:
            obs = Observation("Failed", "PodDeleted", "the pod was deleted before the job finished")
        else:
            obs = observe_pod(pod, now, self.config.imagePullGraceSeconds)
        obs = self._past_deadline(job, status, obs, now)
        if (
            obs.terminal
            and obs.phase == "Failed"
            and should_retry(obs.reason, attempt, job.spec.retry)
        ):
            record = st.attempt_record(status, obs)
            self.events(
                body,
                "Warning",
                "Retrying",
                f"attempt {attempt} failed ({obs.reason}: {obs.message}); "
                f"starting attempt {attempt + 1}",
            )
            await self._start(
                key,
                body,
                job,
                status,
                attempt + 1,
                now,
                attempts=[*(status.get("attempts") or []), record],
            )
            return
        if obs.terminal and pod is not None and obs.reason == "Timeout" and not _pod_done(pod):
            await self.kube.delete_pod(*pod_key)
        new = st.from_observation(status, obs, job.generation, now)
        await self._write(body, status, new)
        if obs.recheck_after is not None:
            self._schedule(key, obs.recheck_after)

    def _past_deadline(
        self, job: Job, status: Mapping[str, Any], obs: Observation, now: datetime
    ) -> Observation:
        """The job's timeout also holds while no kubelet enforces activeDeadlineSeconds."""
        if obs.terminal:
            return obs
        started = parse_time(status.get("startTime"))
        limit = parse_duration(job.spec.timeout or self.config.defaults.timeout)
        if started is None:
            return obs
        left = limit + DEADLINE_SLACK_SECONDS - (now - started).total_seconds()
        if left <= 0:
            return Observation(
                "Failed",
                "Timeout",
                f"the job did not finish within {limit} s",
                start_time=obs.start_time,
                images=obs.images,
            )
        recheck = left if obs.recheck_after is None else min(left, obs.recheck_after)
        return Observation(
            obs.phase,
            obs.reason,
            obs.message,
            obs.exit_code,
            obs.start_time,
            obs.completion_time,
            obs.images,
            recheck,
        )

    async def _start(
        self,
        key: Key,
        body: Body,
        job: Job,
        status: Mapping[str, Any],
        attempt: int,
        now: datetime,
        attempts: list[dict[str, Any]] | None = None,
    ) -> None:
        """Creates the attempt's Secret and Pod, then records the attempt in the status."""
        pull_secret = await self._pull_secret(job)
        pod = get_pod(job, attempt, self.config, pull_secret)
        name = pod["metadata"]["name"]
        created = await self.kube.create_pod(job.namespace, pod)
        if created is not None:
            self.pods[(job.namespace, name)] = created
            self.deleted_pods.discard((job.namespace, name))
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
        await self._write(body, status, new)

    async def _pull_secret(self, job: Job) -> str | None:
        """Writes the job's registry credentials as a Secret; its name, or None if none apply."""
        env = await self._job_env(job)
        found = sources.find_docker_auth_config(env, self.operator_env, sources.read_home_config())
        if found is None:
            return None
        config = authconfig.parse_auth_config(found.text, source_name=found.description)
        registries = matching.registries_of(img for _, img in images_of(job, self.config))
        timeout = self.config.credentialHelperTimeoutSeconds

        def run(name: str, registry: str) -> Any:
            return helper.run_credential_helper(name, registry, timeout=timeout)

        creds = await asyncio.to_thread(matching.select_credentials, config, registries, run)
        if not creds:
            return None
        name = secret.pull_secret_name(job.name)
        manifest = secret.get_pull_secret(
            name=name,
            namespace=job.namespace,
            owner=job.owner_reference(),
            creds=creds,
            labels={names.JOB_LABEL: job.name, **names.MANAGED_BY},
        )
        await self.kube.apply_secret(job.namespace, manifest)
        return name

    async def _job_env(self, job: Job) -> dict[str, str]:
        """The job's variables that can hold DOCKER_AUTH_CONFIG: inline ones win, as a
        container's `env` wins over `envFrom`; among sources the last one wins."""
        inline = job.spec.variables or {}
        if DOCKER_AUTH_CONFIG in inline:
            return {DOCKER_AUTH_CONFIG: inline[DOCKER_AUTH_CONFIG]}
        for i, source in enumerate(job.spec.variablesFrom or []):
            # One key as one variable is a container's `env`: it wins over whole objects.
            key_ref = source.secretKeyRef
            if key_ref is None or source.variable != DOCKER_AUTH_CONFIG:
                continue
            data = await self.kube.secret_data(job.namespace, key_ref.name)
            if data is not None and key_ref.key in data:
                return {DOCKER_AUTH_CONFIG: data[key_ref.key]}
            if not key_ref.optional:
                missing = "not found" if data is None else f"has no key {key_ref.key!r}"
                raise InvalidSpec(
                    f"spec.variablesFrom[{i}]: Secret {key_ref.name!r} {missing} in namespace "
                    f"{job.namespace}"
                )
        env: dict[str, str] = {}
        for i, source in enumerate(job.spec.variablesFrom or []):
            if source.secretKeyRef is not None:
                continue
            ref = source.secretRef or source.configMapRef
            if ref is None:
                raise InvalidSpec(f"spec.variablesFrom[{i}]: needs secretRef or configMapRef")
            kind = "Secret" if source.secretRef is not None else "ConfigMap"
            read = (
                self.kube.secret_data if source.secretRef is not None else self.kube.configmap_data
            )
            data = await read(job.namespace, ref.name)
            if data is None:
                if ref.optional:
                    continue
                raise InvalidSpec(
                    f"spec.variablesFrom[{i}]: {kind} {ref.name!r} not found in namespace "
                    f"{job.namespace}"
                )
            env.update({(source.prefix or "") + k: v for k, v in data.items()})
        return env

    async def _cancel(
        self, key: Key, body: Body, job: Job, status: Mapping[str, Any], now: datetime
    ) -> None:
        attempt = status.get("attempt") or 0
        if attempt:
            await self.kube.delete_pod(job.namespace, names.pod_name(job.name, attempt))
        new = st.build(
            status,
            phase="Canceled",
            generation=job.generation,
            now=now,
            reason="Canceled",
            message="canceled by spec.cancel",
            exit_code=status.get("exitCode"),
        )
        self.events(body, "Normal", "Canceled", "the job was canceled")
        await self._write(body, status, new)

    async def _fail(
        self, key: Key, body: Body, status: Mapping[str, Any], reason: str, message: str
    ) -> None:
        generation = int(body["metadata"].get("generation") or 1)
        new = st.build(
            status,
            phase="Failed",
            generation=generation,
            now=_now(),
            reason=reason,
            message=message,
        )
        await self._write(body, status, new)

    async def _expire(self, key: Key, body: Body, status: Mapping[str, Any], now: datetime) -> None:
        """ttlSecondsAfterFinished: delete the finished job once its time is up."""
        ttl = (body.get("spec") or {}).get("ttlSecondsAfterFinished")
        done = parse_time(status.get("completionTime"))
        if ttl is None or done is None:
            return
        left = done.timestamp() + ttl - now.timestamp()
        if left > 0:
            self._schedule(key, left)
            return
        await self.kube.delete_job(key[0], key[1], body["metadata"].get("uid", ""))

    async def _write(self, body: Body, old: Mapping[str, Any], new: dict[str, Any]) -> None:
        if not st.changed(old, new):
            return
        meta = body["metadata"]
        if st.is_terminal(new) and new.get("reason") not in (None, "Canceled"):
            self.events(body, "Warning", new["reason"], new.get("message") or new["reason"])
        await self.kube.patch_status(meta["namespace"], meta["name"], new)
        self.written[meta.get("uid", "")] = new

    # -- time ------------------------------------------------------------------------------

    def _schedule(self, key: Key, delay: float) -> None:
        self._cancel_timer(key)
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self.timers.pop(key, None)
            self.queue.add(key)

        self.timers[key] = loop.call_later(max(delay, 0.0) + 0.1, fire)

    def _cancel_timer(self, key: Key) -> None:
        timer = self.timers.pop(key, None)
        if timer is not None:
            timer.cancel()


def _pod_done(pod: Body) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
