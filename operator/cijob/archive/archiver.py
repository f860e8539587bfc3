"""The archiver: ended attempts' container logs copied to the store, off the reconcile path,
a few at a time, retried with backoff while the store is down, the outcome left for the
reconciler to write into the status (docs/logs.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from obstore.store import ObjectStore

from cijob.archive import layout, placement
from cijob.archive import store as st
from cijob.archive.redact import Redactor
from cijob.archive.settings import LogArchive
from cijob.kube import Kube, KubeError
from cijob.lifecycle.observe import done
from cijob.render.pod import BUILD_CONTAINER

log = logging.getLogger("cijob")

Key = tuple[str, str]
Body = Mapping[str, Any]
EventSink = Callable[[Body, str, str, str], None]
# Attempts archived at once: each holds at most one container's log (maxBytes) in memory.
CONCURRENCY = 4
# A store that is down: tries 1 s, 2 s, 4 s ... apart, at most 5 min apart, 12 tries in all
# (about 25 minutes), then the attempt's missing logs are given up with a Warning Event.
BACKOFF_START = 1.0
BACKOFF_MAX = 300.0
MAX_TRIES = 12
RETRIED = "LogArchiveRetried"
FAILED = "LogArchiveFailed"


def ran(pod: Body) -> list[str]:
    """The containers of `pod` that started (so have a log): build first, then the others in
    the pod's order (services are init containers)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = [*(status.get("containerStatuses") or [])]
    statuses += status.get("initContainerStatuses") or []
    started = {s.get("name") for s in statuses if s.get("containerID")}
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    names = [c["name"] for c in containers]
    names.sort(key=lambda n: n != BUILD_CONTAINER)
    return [n for n in names if n in started]


def delay(tries: int, start: float = BACKOFF_START, cap: float = BACKOFF_MAX) -> float:
    """Seconds before the next try, after `tries` failed ones."""
    return float(min(cap, start * 2 ** max(0, tries - 1)))


@dataclass(frozen=True)
class _Request:
    key: Key
    uid: str
    attempt: int
    pod: Body


@dataclass
class _Outcome:
    logs: list[dict[str, Any]]
    failures: int = 0
    last_error: str = ""
    given_up: tuple[str, ...] = ()


class Archiver:
    """Holds what was archived until the status records it; never writes the status itself
    (the reconciler's worker is the one writer of a job's status)."""

    def __init__(
        self,
        settings: LogArchive,
        kube: Kube,
        events: EventSink,
        wake: Callable[[Key], None],
        namespace: str,
        *,
        concurrency: int = CONCURRENCY,
        max_tries: int = MAX_TRIES,
        backoff_start: float = BACKOFF_START,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        given_up: Callable[[int], None] = lambda containers: None,
    ) -> None:
        self.settings, self.kube, self.events, self.wake = settings, kube, events, wake
        self.given_up = given_up  # counts the logs given up on (cijob_log_archive_failures)
        self.namespace = namespace  # the operator's own: where its credentials Secret is
        self.concurrency, self.max_tries, self.backoff_start = concurrency, max_tries, backoff_start
        self.sleep = sleep
        self.results: dict[str, dict[int, list[dict[str, Any]]]] = {}
        self.in_flight: dict[str, set[int]] = {}
        self.queue: asyncio.Queue[_Request] = asyncio.Queue()
        self.redactor = Redactor()
        self._store: ObjectStore | None = None

    # -- what the reconciler asks (synchronous, no I/O) -------------------------------------

    def wanted(self, uid: str, status: Mapping[str, Any]) -> list[int]:
        """Ended attempts of the job whose logs are neither recorded, archived nor underway."""
        busy = [*self.in_flight.get(uid, ()), *self.results.get(uid, {})]
        return placement.missing(status, busy)

    def offer(self, key: Key, uid: str, attempt: int, pod: Body | None) -> None:
        """The attempt's pod as last seen (None: gone, or never made): archived once done."""
        if pod is None:
            self._done(key, uid, attempt, [])  # its log went with it
        elif done(pod):
            self.in_flight.setdefault(uid, set()).add(attempt)
            self.queue.put_nowait(_Request(key, uid, attempt, pod))

    def pending(self, uid: str, status: Mapping[str, Any]) -> bool:
        """Whether the job still waits on the archive (its ttl and its forgetting wait too)."""
        return bool(self.in_flight.get(uid) or self.results.get(uid) or self.wanted(uid, status))

    def place(self, uid: str, old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        return placement.place(old, new, self.results.get(uid, {}))

    def landed(self, uid: str, written: Mapping[str, Any]) -> None:
        """The status `written` has landed: what it records needs holding no more."""
        held = self.results.get(uid)
        if not held:
            return
        for attempt in placement.recorded(written):
            held.pop(attempt, None)
        if not held:
            del self.results[uid]

    def forget(self, uid: str) -> None:
        self.results.pop(uid, None)

    # -- the workers ------------------------------------------------------------------------

    async def run(self) -> None:
        """Archives what is offered, `concurrency` attempts at a time, until cancelled."""
        await asyncio.gather(*(self._worker() for _ in range(self.concurrency)))

    async def _worker(self) -> None:
        while True:
            request = await self.queue.get()
            try:
                outcome = await self.archive(request.key, request.uid, request.attempt, request.pod)
            except Exception as exc:  # never let one attempt stop the archive
                log.warning("archiving attempt %s of %s/%s failed: %s", request.attempt,
                            *request.key, self.redactor(str(exc)))  # fmt: skip
                outcome = _Outcome([], 1, self.redactor(str(exc)), ("all",))
            self._report(request, outcome)
            self._done(request.key, request.uid, request.attempt, outcome.logs)

    def _done(self, key: Key, uid: str, attempt: int, logs: list[dict[str, Any]]) -> None:
        self.in_flight.get(uid, set()).discard(attempt)
        if not self.in_flight.get(uid):
            self.in_flight.pop(uid, None)
        self.results.setdefault(uid, {})[attempt] = logs
        self.wake(key)

    def _report(self, request: _Request, outcome: _Outcome) -> None:
        if not outcome.failures:
            return
        namespace, name = request.key
        body = {"metadata": {"namespace": namespace, "name": name, "uid": request.uid}}
        where = f"attempt {request.attempt}"
        if outcome.given_up:
            message = (
                f"{where}: the logs of {', '.join(outcome.given_up)} could not be archived "
                f"({outcome.failures} failed tries; last: {outcome.last_error})"
            )
            self.events(body, "Warning", FAILED, message)
            self.given_up(len(outcome.given_up))
            return
        message = (
            f"{where}: logs archived after {outcome.failures} failed "
            f"{'try' if outcome.failures == 1 else 'tries'} (last: {outcome.last_error})"
        )
        self.events(body, "Warning", RETRIED, message)

    async def archive(self, key: Key, uid: str, attempt: int, pod: Body) -> _Outcome:
        """Each started container's log: one `pods/log` read, then one object, with retries."""
        namespace, job = key
        name = pod["metadata"]["name"]
        outcome = _Outcome([])
        given_up: list[str] = []
        for container in ran(pod):
            data: bytes | None = None
            truncated = False
            object_key = layout.object_key(namespace, job, uid, attempt, container)
            for tries in range(1, self.max_tries + 1):
                try:
                    if data is None:
                        limit = self.settings.maxBytes + 1
                        raw = await self.kube.pod_log(namespace, name, container, limit)
                        if raw is None:  # the pod is gone, and what it held with it
                            return outcome
                        data, truncated = layout.cap(raw, self.settings.maxBytes)
                    await st.put(await self._open(), object_key, data)
                    url = layout.object_url(self.settings.url, object_key)
                    outcome.logs.append(layout.entry(container, url, len(data), truncated))
                    break
                except KubeError as exc:
                    if exc.status == 400:  # the kubelet has no log of it (it never ran)
                        break
                    if not await self._failed(outcome, tries, f"{name}/{container}", exc):
                        given_up.append(container)
                        break
                except Exception as exc:
                    self._store = None  # opened again, credentials read again
                    if not await self._failed(outcome, tries, f"{name}/{container}", exc):
                        given_up.append(container)
                        break
        outcome.given_up = tuple(given_up)
        return outcome

    async def _failed(self, outcome: _Outcome, tries: int, what: str, exc: Exception) -> bool:
        """Counts a failed try; waits before the next one, or says there is none."""
        outcome.failures += 1
        outcome.last_error = self.redactor(f"{type(exc).__name__}: {exc}")[:300]
        if tries >= self.max_tries:
            log.warning("giving up archiving the log of %s after %d tries: %s", what, tries,
                        outcome.last_error)  # fmt: skip
            return False
        wait = delay(tries, self.backoff_start)
        log.warning("archiving the log of %s failed (try %d), again in %.0f s: %s", what, tries,
                    wait, outcome.last_error)  # fmt: skip
        await self.sleep(wait)
        return True

    async def _open(self) -> ObjectStore:
        if self._store is None:
            creds: dict[str, str] = {}
            secret = self.settings.s3.credentialsSecret
            if secret and self.settings.url.startswith("s3://"):
                creds = st.credentials(await self.kube.secret_data(self.namespace, secret), secret)
                self.redactor.hide(creds.values())
            self._store = st.open_store(self.settings, creds)
        return self._store
