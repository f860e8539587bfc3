"""Kubelet simulator: plays one node for matching pods, writing their status as a kubelet does."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import platform
import signal
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp

from testground import clonesim, images, plans, podstatus
from testground import reasons as r
from testground.kubeapi import MERGE_PATCH, Api, ApiError, Endpoint, load_endpoint
from testground.kubelogs import LogServer
from testground.plans import Behaviour, Plans
from testground.podstatus import State

log = logging.getLogger("testground.kubesim")
Json = dict[str, Any]

NODE_NAME = "cijob-sim-node"
DEFAULT_SELECTORS = (plans.JOB_LABEL,)
# Batch Jobs' pods, for a benchmark that compares the operator with plain Jobs.
JOB_POD_SELECTOR = "batch.kubernetes.io/job-name"
KUBELET_VERSION = "v1.34.4"
CONTAINER_RUNTIME = "containerd://2.1.4"
HOST_IP = "127.0.0.1"  # the node's InternalIP: where the apiserver would reach its kubelet
POD_CIDR = "10.244.0.0/16"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40
LEASE_RENEW_EVERY = 10.0
# The kubelet's status manager retries a status update that failed; so does the simulator, for
# failures that say nothing about the pod (a slow, overloaded or restarting API server), with
# backoff (0.5 s doubling up to 8 s): 6 attempts by default (15.5 s), more with `write_attempts`.
WRITE_ATTEMPTS = 6
WRITE_BACKOFF_MAX = 8.0
TRANSIENT_CODES = (429, 500, 502, 503, 504)
NODE_STATUS_EVERY = 60.0
TERMINAL = ("Succeeded", "Failed")


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class PodRecord:
    """What the node did with one pod (by uid): when it could run and when its containers ran.

    Times are time.monotonic() of this process; `wall()` turns one into time.time().
    """

    uid: str
    namespace: str
    name: str
    labels: dict[str, str]
    owner_uid: str | None  # the uid of the pod's controller ownerReference
    seen: float  # the node took the pod: from here on it could run
    ran_from: float | None = None  # a main container started
    ran_until: float | None = None  # no main container running any more
    ended: float | None = None  # terminal or gone: nothing of it can run after this
    phase: str | None = None  # the last phase the node wrote
    reason: str | None = None  # the pod's reason with a terminal phase (Evicted, DeadlineExceeded)
    exit_code: int | None = None  # the first main container's, once terminated
    gone: float | None = None  # the node saw the pod gone from the API server

    @property
    def live(self) -> bool:
        return self.ended is None


def _created(run: _Run, container: str) -> bool:
    state = run.states.get(container)
    return state is not None and state.created


def _controller_uid(meta: Mapping[str, Any]) -> str | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref["uid"])
    return None


@dataclass
class _Run:
    """The node's memory of one pod."""

    uid: str
    namespace: str
    name: str
    pod: Json
    behaviour: Behaviour
    states: dict[str, State] = field(default_factory=dict)
    sandbox: bool = False
    pod_ip: str | None = None
    start_time: str = ""
    deadline: float | None = None  # time.monotonic() at which activeDeadlineSeconds expires
    started: float | None = None  # time.monotonic() of the pod's startTime, once it has one
    last_status: Json | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    released: Behaviour | None = None
    selector: str = ""  # the watch that found it
    record: PodRecord | None = None
    deleting: bool = False
    gone: bool = False  # the deletion was finished
    terminal: bool = False
    task: asyncio.Task[None] | None = None
    # Kept of a finished pod for its log: the containers that ran, and the build's name.
    ran: tuple[str, ...] = ()
    main: str = ""

    @property
    def spec(self) -> Json:
        spec: Json = self.pod["spec"]
        return spec

    def containers(self) -> list[tuple[Json, bool]]:
        """(container, is_init) for every init container, then every main container."""
        inits = [(c, True) for c in self.spec.get("initContainers") or []]
        return [*inits, *((c, False) for c in self.spec["containers"])]


class KubeSim:
    """A simulated kubelet for one fake node, in a background thread.

    Tests choose what happens to a pod before it is created: `sim.plan(ns, pod, Behaviour(...))`
    or `sim.plan_job(ns, job, Behaviour(...), attempt=n)`; `sim.default` covers the rest.
    """

    def __init__(
        self,
        kubeconfig: str | None = None,
        *,
        endpoint: Endpoint | None = None,
        selectors: Iterable[str] = DEFAULT_SELECTORS,
        node_name: str = NODE_NAME,
        default: Behaviour | None = None,
        check_references: bool = True,
        record: bool = True,
        max_pods: int = 1000,
        namespaces: set[str] | None = None,
        write_attempts: int = WRITE_ATTEMPTS,
    ) -> None:
        self.endpoint = endpoint or load_endpoint(kubeconfig)
        self.selectors = tuple(selectors)
        self.node_name = node_name
        self.plans = Plans(default)
        self.check_references = check_references
        self.record = record
        self.max_pods = max_pods
        # None: every namespace. A set (which the caller may keep adding to) keeps two test
        # sessions sharing one cluster from running each other's pods with the wrong plans.
        self.namespaces = namespaces
        self.write_attempts = write_attempts
        self.errors: list[str] = []
        self.writes = 0
        # Wall clock minus monotonic clock, to read PodRecord times as time.time().
        self.clock_offset = time.time() - time.monotonic()
        self._records: dict[str, PodRecord] = {}
        self.binds = 0
        self._runs: dict[str, _Run] = {}
        self._by_name: dict[tuple[str, str], str] = {}
        self._early_release: dict[tuple[str, str], Behaviour | None] = {}
        self._history: dict[tuple[str, str], list[Json]] = {}
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._listed = 0
        self._ip_pool = _pod_ips()
        self._node_uid = ""
        self._boot_id = ""
        self._node_since = ""
        self.node_labels = {
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            "cijob.dev/simulated-node": "true",
        }
        self.api: Api
        self.logs = LogServer(self._container_log)

    # --- the API tests use (any thread) --------------------------------------------------------

    @property
    def default(self) -> Behaviour:
        return self.plans.default

    @default.setter
    def default(self, behaviour: Behaviour) -> None:
        self.plans.default = behaviour

    def plan(self, namespace: str, pod_name: str, behaviour: Behaviour) -> None:
        """Chooses the behaviour of the pod `namespace/pod_name` (plan before it is created)."""
        self.plans.plan(namespace, pod_name, behaviour)

    def plan_job(
        self, namespace: str, job: str, behaviour: Behaviour, attempt: int | None = None
    ) -> None:
        """Chooses the behaviour of a CiJob's pod by its job and attempt labels (any attempt
        when `attempt` is None)."""
        self.plans.plan_job(namespace, job, behaviour, attempt)

    def serve_namespace(self, namespace: str) -> None:
        """Also runs the pods of `namespace` (when limited to some namespaces)."""
        if self.namespaces is not None:
            self.namespaces.add(namespace)

    def release(self, namespace: str, pod_name: str, outcome: Behaviour | None = None) -> None:
        """Ends a held pod: with `outcome`'s exit code or failure, else its planned exit code."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the simulator is not running")
        loop.call_soon_threadsafe(self._release, namespace, pod_name, outcome)

    def records(self) -> list[PodRecord]:
        """Every pod this node took, by uid, with when it could run and when it ran (kept only
        with record=True); copies, safe to read while the node runs."""
        with self._changed:
            return [replace(r) for r in self._records.values()]

    def wall(self, monotonic: float) -> float:
        """A PodRecord time as time.time()."""
        return monotonic + self.clock_offset

    def history(self, namespace: str, pod_name: str) -> list[Json]:
        """Every status this node wrote for the pod, oldest first (phases only if record=False)."""
        with self._changed:
            return list(self._history.get((namespace, pod_name), []))

    def wait_for(
        self,
        namespace: str,
        pod_name: str,
        predicate: Callable[[Json], bool] | str,
        timeout: float = 30.0,
    ) -> Json:
        """Waits until the node has written a status matching `predicate` (or that phase)."""
        check: Callable[[Json], bool]
        if isinstance(predicate, str):
            phase = predicate

            def check(s: Json) -> bool:
                return s.get("phase") == phase
        else:
            check = predicate
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for status in self._history.get((namespace, pod_name), []):
                    if check(status):
                        return status
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [s.get("phase") for s in self._history.get((namespace, pod_name), [])]
                    raise TimeoutError(
                        f"kubesim: {namespace}/{pod_name} reached no wanted status in "
                        f"{timeout} s; phases written: {seen}; errors: {self.errors}"
                    )
                self._changed.wait(left)

    def start(self, timeout: float = 30.0) -> KubeSim:
        """Registers the node, lists and watches pods; returns once it is serving."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._thread_main, name="kubesim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"kubesim did not start in {timeout} s; errors: {self.errors}")
        if self._failure is not None:
            raise RuntimeError(f"kubesim failed to start: {self._failure}") from self._failure
        return self

    def stop(self) -> None:
        """Stops watching and writing; the node object stays, as a stopped kubelet leaves it."""
        loop, task, thread = self._loop, self._main_task, self._thread
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        if thread is not None:
            thread.join(15)
        self._thread = None

    def __enter__(self) -> KubeSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the event loop ---------------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._main_task = loop.create_task(self._main())
            loop.run_until_complete(self._main_task)
        except asyncio.CancelledError:
            pass
        except BaseException as e:  # reported by start() or kept in errors
            self._failure = e
            self.errors.append(f"kubesim stopped: {e!r}")
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        api = Api(self.endpoint)
        self.api = api
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.logs.start()
            await self._register_node()
            tasks.append(asyncio.create_task(self._heartbeat()))
            tasks += [asyncio.create_task(self._watch(s)) for s in self.selectors]
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            for run in list(self._runs.values()):
                if run.task is not None:
                    run.task.cancel()
            pending = [t for t in [*tasks, *(x.task for x in self._runs.values() if x.task)] if t]
            await asyncio.gather(*pending, return_exceptions=True)
            await self.logs.stop()
            await api.close()

    def _error(self, what: str) -> None:
        log.error("kubesim: %s", what)
        self.errors.append(what)
        with self._changed:
            self._changed.notify_all()

    # --- the node -----------------------------------------------------------------------------

    def _node_status(self) -> Json:
        now = podstatus.now()
        conditions = [
            {
                "type": t,
                "status": s,
                "reason": reason,
                "message": msg,
                "lastHeartbeatTime": now,
                "lastTransitionTime": self._node_since,
            }
            for t, s, reason, msg in r.NODE_CONDITIONS
        ]
        capacity = {
            "cpu": "8",
            "memory": "32780912Ki",
            "ephemeral-storage": "102626232Ki",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            "pods": str(self.max_pods),
        }
        allocatable = {**capacity, "memory": "32678512Ki", "ephemeral-storage": "94580335255"}
        features = {"recursiveReadOnlyMounts": True, "userNamespaces": True}
        return {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": HOST_IP},
                {"type": "Hostname", "address": self.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.logs.port or 10250}},
            "nodeInfo": {
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, self.node_name).hex,
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, self.node_name)),
                "bootID": self._boot_id,
                "kernelVersion": platform.release(),
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": CONTAINER_RUNTIME,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "runtimeHandlers": [
                {"name": "", "features": features},
                {"name": "runc", "features": features},
            ],
            "features": {"supplementalGroupsPolicy": True},
        }

    async def _register_node(self) -> None:
        self._boot_id = str(uuid.uuid4())
        self._node_since = podstatus.now()
        labels = self.node_labels
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": labels},
            "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
        }
        code, node = await self.api.request("POST", "/api/v1/nodes", body, ok=(409,))
        if code == 409:
            _, node = await self.api.request("GET", f"/api/v1/nodes/{self.node_name}")
        self._node_uid = node["metadata"]["uid"]
        await self._post_node_status()
        await self._renew_lease()
        # The TaintNodesByCondition admission plugin adds this taint to every new node, and the
        # node-lifecycle controller removes it once the node is Ready; the test ground runs no
        # such controller (so nothing ever evicts from this node), so do its one job here.
        taints = node["spec"].get("taints") or []
        kept = [t for t in taints if t.get("key") != "node.kubernetes.io/not-ready"]
        if kept != taints:
            await self.api.request(
                "PATCH", f"/api/v1/nodes/{self.node_name}", {"spec": {"taints": kept or None}},
                content_type=MERGE_PATCH,
            )  # fmt: skip

    async def _post_node_status(self) -> None:
        await self.api.request(
            "PATCH",
            f"/api/v1/nodes/{self.node_name}/status",
            {"status": self._node_status()},
            content_type=MERGE_PATCH,
        )

    async def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
        spec = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": _micro_now(),
        }
        code, _ = await self.api.request(
            "PATCH", f"{path}/{self.node_name}", {"spec": spec}, content_type=MERGE_PATCH,
            ok=(404,),
        )  # fmt: skip
        if code == 404:
            owner = {"apiVersion": "v1", "kind": "Node", "name": self.node_name}
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": self.node_name,
                    "namespace": LEASE_NAMESPACE,
                    "ownerReferences": [{**owner, "uid": self._node_uid}],
                },
                "spec": spec,
            }
            await self.api.request("POST", path, body, ok=(409,))

    async def _heartbeat(self) -> None:
        last_status = time.monotonic()
        while True:
            await asyncio.sleep(LEASE_RENEW_EVERY)
            try:
                await self._renew_lease()
                if time.monotonic() - last_status >= NODE_STATUS_EVERY:
                    await self._post_node_status()
                    last_status = time.monotonic()
            except ApiError as e:
                if e.code == 404:  # someone deleted the node: register again
                    await self._register_node()
                else:
                    self._error(f"heartbeat: {e}")
            except (TimeoutError, OSError) as e:
                log.warning("kubesim heartbeat: %r", e)

    # --- watching pods ------------------------------------------------------------------------

    async def _watch(self, selector: str) -> None:
        first = True
        while True:
            try:
                _, listing = await self.api.request(
                    "GET", "/api/v1/pods", params={"labelSelector": selector}
                )
                for pod in listing.get("items", []):
                    self._on_pod("ADDED", pod, selector)
                # A pod deleted while the watch was away sends no DELETED: as the kubelet's
                # full sync does, stop what the API server no longer has.
                listed = {p["metadata"]["uid"] for p in listing.get("items", [])}
                for run in [x for x in self._runs.values() if x.selector == selector]:
                    if run.uid not in listed:
                        self._forget(run)
                rv = listing["metadata"]["resourceVersion"]
                if first:
                    first = False
                    self._listed += 1
                    if self._listed == len(self.selectors):
                        self._ready.set()
                rv = await self._watch_from(selector, rv)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._error(f"watch {selector!r}: {e!r}")
                await asyncio.sleep(0.5)

    async def _watch_from(self, selector: str, rv: str) -> str:
        """Watches from `rv` until the history is gone (410), then returns to relist."""
        params = {
            "labelSelector": selector,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        while True:
            async for event in self.api.watch("/api/v1/pods", {**params, "resourceVersion": rv}):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return rv
                    raise ApiError("WATCH", "/api/v1/pods", obj.get("code", 0), str(obj))
                rv = obj["metadata"]["resourceVersion"]
                if kind != "BOOKMARK":
                    self._on_pod(kind, obj, selector)

    def _on_pod(self, kind: str | None, pod: Json, selector: str = "") -> None:
        meta, spec = pod["metadata"], pod["spec"]
        node = spec.get("nodeName")
        if node and node != self.node_name:
            return  # another node's pod
        uid, key = meta["uid"], (meta["namespace"], meta["name"])
        run = self._runs.get(uid)
        if kind == "DELETED":
            if run is not None:
                self._forget(run)
            return
        if run is None:
            if not node and meta.get("deletionTimestamp"):
                return  # an unscheduled pod is deleted at once by the apiserver
            if not node and not fits(spec, self.node_labels):
                return  # meant for another node: a scheduler would not put it here
            if not node and spec.get("schedulingGates"):
                return  # a scheduler binds no gated pod; removing the gates brings it back
            # Not ours to run; but nothing else would ever finish deleting a pod on this node
            # (another session's, or one left behind by a stopped simulator).
            foreign = self.namespaces is not None and key[0] not in self.namespaces
            if foreign and not (node and meta.get("deletionTimestamp")):
                return
            run = _Run(uid, key[0], key[1], pod, self.plans.lookup(*key, meta.get("labels") or {}))
            run.selector = selector
            self._runs[uid] = run
            self._by_name[key] = uid
            if key in self._early_release:
                run.released = self._early_release.pop(key) or run.behaviour
            phase = (pod.get("status") or {}).get("phase")
            run.terminal = phase in TERMINAL
            if meta.get("deletionTimestamp"):
                run.deleting = True
                run.task = asyncio.create_task(self._guard(run, self._finish_deletion))
            elif not run.terminal:
                run.task = asyncio.create_task(self._guard(run, self._drive))
            return
        if not run.terminal:
            run.pod = pod
            ads = spec.get("activeDeadlineSeconds")
            if ads is not None and run.started is not None:
                # The kubelet reads activeDeadlineSeconds at every sync: a lowered one (how the
                # operator stops an attempt) ends the pod as soon as it has passed.
                deadline = run.started + float(ads)
                if deadline != run.deadline:
                    run.deadline = deadline
                    run.wake.set()
        if meta.get("deletionTimestamp") and not run.deleting:
            run.deleting = True
            if run.task is not None and not run.task.done():
                run.wake.set()
            else:
                run.task = asyncio.create_task(self._guard(run, self._finish_deletion))

    def _container_log(self, namespace: str, pod: str, container: str) -> tuple[int, bytes]:
        """What the kubelet's containerLogs answers: the container's output (the plan's
        `log` for the build, one line of its own for the others), or why there is none."""
        uid = self._by_name.get((namespace, pod))
        run = self._runs.get(uid) if uid else None
        if run is None:
            return 404, f'pod "{pod}" not found on this node'.encode()
        if run.terminal and run.main:
            names, main, ran = list(run.ran), run.main, container in run.ran
        else:
            names = [c["name"] for c, _ in run.containers()]
            main, ran = run.spec["containers"][0]["name"], _created(run, container)
        if container not in names and not (run.terminal and run.main):
            return 400, f'container "{container}" is not valid for pod "{pod}"'.encode()
        if not ran and not (run.terminal and not run.main):
            return 400, f'container "{container}" in pod "{pod}" is waiting to start'.encode()
        if container == main and run.behaviour.log is not None:
            return 200, run.behaviour.log.encode()
        return 200, f"kubesim: {container} of {namespace}/{pod} ran (simulated)\n".encode()

    def _forget(self, run: _Run) -> None:
        self._note_gone(run)
        self._runs.pop(run.uid, None)
        if self._by_name.get((run.namespace, run.name)) == run.uid:
            del self._by_name[(run.namespace, run.name)]
        if run.task is not None and not run.task.done():
            run.task.cancel()

    def _release(self, namespace: str, name: str, outcome: Behaviour | None) -> None:
        uid = self._by_name.get((namespace, name))
        run = self._runs.get(uid) if uid else None
        if run is None:
            self._early_release[(namespace, name)] = outcome
            return
        run.released = outcome or run.behaviour
        run.wake.set()

    async def _guard(self, run: _Run, work: Callable[[_Run], Awaitable[None]]) -> None:
        # Takes the function, not a coroutine: a task cancelled before it runs (at stop())
        # must not leave a never-awaited coroutine behind.
        try:
            await work(run)
            if run.deleting and not run.gone:  # deleted while the last write was on its way
                await self._finish_deletion(run)
        except asyncio.CancelledError:
            raise
        except ApiError as e:
            if e.code == 404 or (e.code == 409 and "UID" in e.message):
                return  # the pod is gone, or is another pod now
            self._error(f"{run.namespace}/{run.name}: {e}")
        except Exception as e:
            self._error(f"{run.namespace}/{run.name}: {e!r}")

    # --- the record of when pods could run and ran ---------------------------------------------

    def _note_seen(self, run: _Run) -> None:
        if not self.record or run.record is not None:
            return
        meta = run.pod["metadata"]
        run.record = PodRecord(
            uid=run.uid,
            namespace=run.namespace,
            name=run.name,
            labels=dict(meta.get("labels") or {}),
            owner_uid=_controller_uid(meta),
            seen=time.monotonic(),
        )
        with self._changed:
            self._records[run.uid] = run.record

    def _main_running(self, run: _Run) -> bool:
        return any(
            (st := run.states.get(c["name"])) is not None and st.kind == "running"
            for c in run.spec.get("containers") or []
        )

    def _note_written(self, run: _Run, status: Json, running: bool) -> None:
        rec = run.record
        if rec is None:
            return
        now = time.monotonic()
        with self._changed:
            if not running and rec.ran_from is not None and rec.ran_until is None:
                rec.ran_until = now
            rec.phase = status.get("phase")
            statuses = status.get("containerStatuses") or []
            first = run.spec["containers"][0]["name"] if run.spec.get("containers") else None
            for cs in statuses:
                term = (cs.get("state") or {}).get("terminated")
                if cs.get("name") == first and term is not None:
                    rec.exit_code = int(term.get("exitCode", 0))
            if rec.phase in TERMINAL:
                rec.reason = status.get("reason")
                if rec.ran_from is not None and rec.ran_until is None:
                    rec.ran_until = now
                if rec.ended is None:
                    rec.ended = now

    def _note_gone(self, run: _Run) -> None:
        rec = run.record
        if rec is None:
            return
        now = time.monotonic()
        with self._changed:
            rec.gone = rec.gone or now
            if rec.ran_from is not None and rec.ran_until is None:
                rec.ran_until = now
            if rec.ended is None:
                rec.ended = now

    # --- one pod's life -----------------------------------------------------------------------

    async def _write(
        self,
        run: _Run,
        phase: str | None = None,
        reason: str | None = None,
        message: str | None = None,
        disruption: str | None = None,
    ) -> None:
        view = podstatus.PodView(
            phase=phase or podstatus.phase_of(run.pod, run.states, terminal=False),
            states=run.states,
            sandbox_ready=run.sandbox,
            host_ip=HOST_IP,
            pod_ip=run.pod_ip,
            start_time=run.start_time,
            reason=reason,
            message=message,
            disruption_message=disruption,
        )
        status = podstatus.build_status(run.pod, view, run.last_status, podstatus.now())
        running = self._main_running(run)
        rec = run.record
        if running and rec is not None and rec.ran_from is None:
            with self._changed:  # before the write: the containers run from now on
                rec.ran_from = time.monotonic()
        await self._request(
            "PATCH",
            f"/api/v1/namespaces/{run.namespace}/pods/{run.name}/status",
            # The uid makes the patch fail rather than touch a new pod of the same name.
            {"metadata": {"uid": run.uid}, "status": status},
            content_type=MERGE_PATCH,
        )
        self.writes += 1
        self._note_written(run, status, running)
        run.last_status = status
        if status["phase"] in TERMINAL:
            # Keep little of a finished pod: a benchmark leaves thousands of them behind.
            run.ran = tuple(c["name"] for c, _ in run.containers() if _created(run, c["name"]))
            run.main = run.spec["containers"][0]["name"]
            run.terminal, run.last_status, run.states = True, None, {}
            run.pod = {"metadata": run.pod["metadata"], "spec": {"nodeName": self.node_name}}
        with self._changed:
            entry = status if self.record else {"phase": status["phase"]}
            self._history.setdefault((run.namespace, run.name), []).append(entry)
            self._changed.notify_all()

    async def _request(self, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        """A pod's write or read, retried while the API server is only slow, overloaded or
        away (`write_attempts` attempts)."""
        last = self.write_attempts - 1
        for attempt in range(self.write_attempts):
            try:
                return await self.api.request(*args, **kwargs)
            except (TimeoutError, aiohttp.ClientError):
                if attempt == last:
                    raise
            except ApiError as e:
                if e.code not in TRANSIENT_CODES or attempt == last:
                    raise
            await asyncio.sleep(min(0.5 * 2**attempt, WRITE_BACKOFF_MAX))
        raise AssertionError("unreachable")

    async def _bind(self, run: _Run) -> bool:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": run.name, "namespace": run.namespace, "uid": run.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        path = f"/api/v1/namespaces/{run.namespace}/pods/{run.name}/binding"
        code, _ = await self._request("POST", path, body, ok=(409,))
        if code == 409:  # bound meanwhile (or by our own retry): ours if bound to this node
            _, pod = await self._request(
                "GET", f"/api/v1/namespaces/{run.namespace}/pods/{run.name}"
            )
            if pod["spec"].get("nodeName") != self.node_name:
                self._forget(run)
                return False
            run.pod = pod
        else:
            self.binds += 1
        return True

    def _next_ip(self) -> str:
        try:
            return next(self._ip_pool)
        except StopIteration:
            self._ip_pool = _pod_ips()
            return next(self._ip_pool)

    async def _wait(self, run: _Run, seconds: float | None) -> str:
        """Waits `seconds` (None: forever) unless the pod is deleted, released or past its
        deadline first; returns which: "elapsed", "deleted", "released" or "deadline"."""
        until = None if seconds is None else time.monotonic() + seconds
        while True:
            run.wake.clear()
            if run.deleting:
                return "deleted"
            if run.released is not None:
                return "released"
            now = time.monotonic()
            if run.deadline is not None and now >= run.deadline:
                return "deadline"
            if until is not None and now >= until:
                return "elapsed"
            ends = [t for t in (until, run.deadline) if t is not None]
            timeout = min(ends) - now if ends else None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(run.wake.wait(), timeout)

    async def _drive(self, run: _Run) -> None:
        pod, spec = run.pod, run.spec
        if not spec.get("nodeName") and not await self._bind(run):
            return
        self._note_seen(run)
        status = pod.get("status") or {}
        run.start_time = status.get("startTime") or podstatus.now()
        run.started = time.monotonic()
        ads = spec.get("activeDeadlineSeconds")
        if ads is not None:
            run.deadline = run.started + float(ads)
        default_wait = r.POD_INITIALIZING if spec.get("initContainers") else r.CONTAINER_CREATING
        run.states = {c["name"]: podstatus.waiting(default_wait) for c, _ in run.containers()}
        b = run.behaviour
        target = b.container or spec["containers"][0]["name"]
        if status.get("phase") == "Running":
            # Running already (a simulator restarted): carry on from there.
            run.sandbox, run.pod_ip = True, status.get("podIP") or self._next_ip()
            run.last_status = status
            self._start_all(run, run.start_time, until=None)
            await self._finish(run, b, target, run.start_time)
            return

        # 1. Seen: Pending, the sandbox not yet made, containers waiting.
        await self._write(run)
        if await self._interrupted(run, 0):
            return

        # 2. The sandbox is up; containers start, unless one cannot be created.
        run.sandbox, run.pod_ip = True, self._next_ip()
        started = podstatus.now()
        stuck = await self._creation_failure(run, b)
        if stuck is not None:
            await self._stuck(run, b, *stuck, started)
            return
        if b.clone_error is not None and clonesim.has_clone(spec):
            # restartPolicy Never: a failed init container fails the pod; nothing after it starts
            self._start_all(run, started, until=clonesim.CLONE)
            run.states[clonesim.CLONE] = podstatus.terminated(
                1, started, podstatus.now(), message=b.clone_error
            )
            run.sandbox = False
            await self._write(run)
            return
        if b.failure == plans.NO_SHELL:
            self._start_all(run, started, until=None)
            finished = podstatus.now()
            spec_command = next(c for c, _ in run.containers() if c["name"] == target).get(
                "command"
            )
            command = b.command or (spec_command or ["sh"])[0]
            fmt = r.NO_SUCH_EXECUTABLE if "/" in command else r.EXECUTABLE_NOT_FOUND
            message = fmt.format(command=command)
            run.states[target] = podstatus.terminated(
                r.START_ERROR_EXIT_CODE, podstatus.EPOCH, finished, r.START_ERROR, message
            )
            self._end_others(run, b, target, started, finished)
            run.sandbox = False
            await self._write(run)
            return
        if await self._never_ready(run, b, started):
            return
        self._start_all(run, started, until=None)
        await self._write(run)
        await self._finish(run, b, target, started)

    async def _never_ready(self, run: _Run, b: Behaviour, started: str) -> bool:
        """A probed sidecar of `b.never_ready`: it runs, is never started, and is restarted
        each time its startup probe has failed failureThreshold times, as the kubelet does;
        nothing after it starts. True once the pod was deleted or ran out of time."""
        c = next(
            (c for c, init in run.containers()
             if init and c["name"] in b.never_ready and c.get("startupProbe")),
            None,
        )  # fmt: skip
        if c is None:
            return False
        probe = c["startupProbe"]
        give_up = float(probe.get("periodSeconds", 10)) * int(probe.get("failureThreshold", 3))
        self._start_all(run, started, until=c["name"])
        state = replace(podstatus.running(started), started=False)
        while True:
            run.states[c["name"]] = state
            await self._write(run)
            if await self._interrupted(run, give_up):
                return True
            now = podstatus.now()
            killed = podstatus.terminated(r.SIGKILL_EXIT_CODE, state.started_at, now)
            state = replace(
                podstatus.running(now), started=False, restarts=state.restarts + 1, last=killed
            )

    async def _fail_services(self, run: _Run, b: Behaviour) -> None:
        """`b.service_failures`: each sidecar ends, then the kubelet restarts it."""
        for name, times, reason in b.service_failures:
            for _ in range(times):
                st = run.states[name]
                now = podstatus.now()
                code = r.OOM_EXIT_CODE if reason == r.OOM_KILLED else 1
                ended = podstatus.terminated(code, st.started_at, now, reason)
                run.states[name] = replace(ended, restarts=st.restarts, last=st.last)
                await self._write(run)
                run.states[name] = replace(
                    podstatus.running(podstatus.now()), restarts=st.restarts + 1, last=ended
                )
                await self._write(run)

    async def _finish(self, run: _Run, b: Behaviour, target: str, started: str) -> None:
        """3. Run, then end as planned (or as released, deleted, or past the deadline)."""
        seconds = None if b.hold else b.run_seconds
        await self._fail_services(run, b)
        if await self._interrupted(run, seconds):
            return
        outcome = run.released or b
        target = outcome.container or target
        finished = podstatus.now()
        run.sandbox = False
        if outcome.failure == plans.EVICTED:
            for c, _ in run.containers():
                if run.states[c["name"]].kind == "running":
                    run.states[c["name"]] = podstatus.terminated(
                        r.SIGKILL_EXIT_CODE, started, finished
                    )
            message = outcome.message or r.EVICTION_MESSAGE.format(
                resource="memory", threshold="100Mi", available="51200Ki",
                container=target, usage="2Gi", request="0",
            )  # fmt: skip
            await self._write(run, "Failed", r.EVICTED, message, disruption=message)
            return
        if outcome.failure == plans.OOM:
            run.states[target] = podstatus.terminated(
                r.OOM_EXIT_CODE, started, finished, r.OOM_KILLED
            )
        else:
            run.states[target] = podstatus.terminated(outcome.exit_code, started, finished)
        self._end_others(run, outcome, target, started, finished)
        await self._write(run)

    def _start_all(self, run: _Run, at: str, until: str | None) -> None:
        """Starts every container up to (not including) the container named `until`."""
        for c, init in run.containers():
            if c["name"] == until:
                return
            if init and not podstatus.is_sidecar(c):
                done = clonesim.message(c, run.behaviour)
                run.states[c["name"]] = podstatus.terminated(0, at, at, message=done)
            else:
                run.states[c["name"]] = podstatus.running(at)

    def _end_others(
        self, run: _Run, b: Behaviour, target: str, started: str, finished: str
    ) -> None:
        """After the target container ends: other main containers exit 0, then sidecars stop."""
        for c, init in run.containers():
            st = run.states[c["name"]]
            if c["name"] == target or st.kind != "running":
                continue
            code = b.sidecar_exit_code if init else 0
            run.states[c["name"]] = podstatus.ended(st, code, st.started_at or started, finished)

    async def _creation_failure(self, run: _Run, b: Behaviour) -> tuple[str, str, str] | None:
        """(container, waiting reason, message) for a container that cannot be created."""
        containers = run.containers()
        if b.failure in plans.WAITING_FAILURES:
            name = b.container or run.spec["containers"][0]["name"]
            c = next(c for c, _ in containers if c["name"] == name)
            image = c.get("image", "")
            if b.failure == plans.IMAGE_PULL:
                try:
                    ref = images.goq(images.parse(image).familiar)
                except images.InvalidReference:
                    ref = images.goq(image)
                return name, r.ERR_IMAGE_PULL, b.message or r.PULL_ACCESS_DENIED.format(ref=ref)
            if b.failure == plans.INVALID_IMAGE:
                message = b.message or images.invalid_image_message(image, force=True) or ""
                return name, r.INVALID_IMAGE_NAME, message
            secret = _first_secret(c) or "registry-credentials"
            message = b.message or r.SECRET_NOT_FOUND.format(name=secret)
            return name, r.CREATE_CONTAINER_CONFIG_ERROR, message
        # As a real node would: images that do not parse, Secrets and ConfigMaps that are missing.
        for c, _ in containers:
            invalid = images.invalid_image_message(c.get("image", ""))
            if invalid is not None:
                return c["name"], r.INVALID_IMAGE_NAME, invalid
        if self.check_references:
            for c, _ in containers:
                problem = await self._missing_reference(run.namespace, c)
                if problem is not None:
                    return c["name"], r.CREATE_CONTAINER_CONFIG_ERROR, problem
        return None

    async def _missing_reference(self, namespace: str, c: Mapping[str, Any]) -> str | None:
        wanted: list[tuple[str, str, str | None]] = []  # (kind, name, key)
        for env in c.get("env") or []:
            src = env.get("valueFrom") or {}
            for kind, ref_key in (("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")):
                ref = src.get(ref_key)
                if ref and not ref.get("optional"):
                    wanted.append((kind, ref["name"], ref["key"]))
        for env_from in c.get("envFrom") or []:
            for kind, ref_key in (("secret", "secretRef"), ("configmap", "configMapRef")):
                ref = env_from.get(ref_key)
                if ref and not ref.get("optional"):
                    wanted.append((kind, ref["name"], None))
        for kind, name, key in wanted:
            resource = "secrets" if kind == "secret" else "configmaps"
            code, obj = await self.api.request(
                "GET", f"/api/v1/namespaces/{namespace}/{resource}/{name}", ok=(404,)
            )
            if code == 404:
                fmt = r.SECRET_NOT_FOUND if kind == "secret" else r.CONFIGMAP_NOT_FOUND
                return fmt.format(name=name)
            if key is not None and key not in {**obj.get("data", {}), **obj.get("binaryData", {})}:
                fmt = r.SECRET_KEY_NOT_FOUND if kind == "secret" else r.CONFIGMAP_KEY_NOT_FOUND
                return fmt.format(key=key, namespace=namespace, name=name)
        return None

    async def _stuck(
        self, run: _Run, b: Behaviour, name: str, reason: str, message: str, started: str
    ) -> None:
        """A container that cannot start: the pod stays Pending until deleted or past deadline."""
        self._start_all(run, started, until=name)
        is_main = any(c["name"] == name for c in run.spec["containers"])
        if is_main:  # the other main containers do start
            for c in run.spec["containers"]:
                if c["name"] != name:
                    run.states[c["name"]] = podstatus.running(started)
        run.states[name] = podstatus.waiting(reason, message)
        await self._write(run)
        if reason == r.ERR_IMAGE_PULL:
            if await self._interrupted(run, b.backoff_after):
                return
            c = next(c for c, _ in run.containers() if c["name"] == name)
            back_off = r.BACK_OFF_PULLING.format(
                image=images.goq(c.get("image", "")), reason=reason, message=message
            )
            run.states[name] = podstatus.waiting(r.IMAGE_PULL_BACK_OFF, back_off)
            await self._write(run)
        while True:
            run.released = None  # a release cannot help a container that never started
            if await self._interrupted(run, None):
                return

    async def _interrupted(self, run: _Run, seconds: float | None) -> bool:
        """Waits like _wait; handles deletion and the deadline, returning True if they ended the
        pod, False when the time elapsed or the pod was released."""
        why = await self._wait(run, seconds)
        if why == "deleted":
            await self._finish_deletion(run)
            return True
        if why == "deadline":
            self._kill(run, run.behaviour.sigterm_exit_code)
            await self._write(run, "Failed", r.DEADLINE_EXCEEDED, r.DEADLINE_MESSAGE)
            return True
        return False

    def _kill(self, run: _Run, exit_code: int) -> None:
        """Stops every container as the kubelet does when a pod ends early."""
        finished = podstatus.now()
        initialized = not run.spec.get("initContainers") or any(
            run.states[c["name"]].kind != "waiting" for c in run.spec["containers"]
        )
        for c, init in run.containers():
            st = run.states[c["name"]]
            if st.kind == "running":
                code = run.behaviour.sidecar_exit_code if init else exit_code
                run.states[c["name"]] = podstatus.ended(st, code, st.started_at, finished)
            elif st.kind == "waiting" and (init or initialized):
                run.states[c["name"]] = podstatus.never_located()
        run.sandbox = False

    async def _finish_deletion(self, run: _Run) -> None:
        """A graceful deletion: SIGTERM, SIGKILL past the grace period, report, then the final
        delete. A finalizer keeps the object after it (ended, not gone) until it is removed."""
        if not run.terminal and run.states:
            grace = run.pod["metadata"].get("deletionGracePeriodSeconds")
            grace = float(
                run.spec.get("terminationGracePeriodSeconds", 30) if grace is None else grace
            )
            b = run.behaviour
            await asyncio.sleep(min(b.sigterm_seconds, grace))
            self._kill(
                run, b.sigterm_exit_code if b.sigterm_seconds <= grace else r.SIGKILL_EXIT_CODE
            )
            await self._write(run, podstatus.phase_of(run.pod, run.states, terminal=True))
        elif not run.terminal and run.pod["spec"].get("nodeName"):
            # Bound but never seen running here (e.g. a node restart): report as TerminatePod.
            run.states = {c["name"]: podstatus.never_located() for c, _ in run.containers()}
            run.start_time = (run.pod.get("status") or {}).get("startTime") or podstatus.now()
            await self._write(run, "Failed")
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": run.uid},
        }
        code, left = await self._request(
            "DELETE", f"/api/v1/namespaces/{run.namespace}/pods/{run.name}", body, ok=(404, 409)
        )
        run.gone = True  # the node's part is done
        if code != 200 or not ((left or {}).get("metadata") or {}).get("finalizers"):
            self._note_gone(run)  # else the DELETED event, once the finalizers go, says so


def _term_matches(term: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for e in term.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        have = labels.get(key)
        ok = {
            "In": have is not None and have in values,
            "NotIn": have is None or have not in values,
            "Exists": have is not None,
            "DoesNotExist": have is None,
        }.get(op, False)  # Gt/Lt never hold for this node's labels
        if not ok:
            return False
    # matchFields can only name metadata.name.
    return all(
        f.get("key") == "metadata.name" and labels.get("kubernetes.io/hostname") in f["values"]
        for f in term.get("matchFields") or []
    )


def fits(spec: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether the scheduler's node filters would allow this node: nodeSelector and required
    node affinity (this node has no taints, so tolerations never matter)."""
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    return not terms or any(_term_matches(t, labels) for t in terms)


def _pod_ips() -> Iterator[str]:
    """Pod addresses from the node's range, skipping .0 and .1 (the bridge) of every /24."""
    for ip in ipaddress.ip_network(POD_CIDR).hosts():
        if int(ip) & 0xFF > 1:
            yield str(ip)


def _first_secret(c: Mapping[str, Any]) -> str | None:
    for env in c.get("env") or []:
        ref = (env.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            return str(ref["name"])
    for env_from in c.get("envFrom") or []:
        ref = env_from.get("secretRef")
        if ref:
            return str(ref["name"])
    return None


def run_forever(sim: KubeSim, echo: Callable[[str], None] = print) -> None:
    """Runs the simulator until SIGINT/SIGTERM (the CLI's `kubesim` command)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sim.start()
    echo(
        f"kubesim: node {sim.node_name} serving pods matching {list(sim.selectors)} "
        f"(pid {os.getpid()}); Ctrl-C to stop"
    )
    while not stop.wait(5):
        for e in sim.errors:
            echo(f"kubesim error: {e}")
        sim.errors.clear()
    sim.stop()
    echo(f"kubesim: stopped after {sim.binds} binds and {sim.writes} status writes")
