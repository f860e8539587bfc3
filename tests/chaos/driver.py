"""Plays a scenario against the cluster, one due action at a time."""

from __future__ import annotations

import heapq
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos import plan
from chaos.checks import Decoy
from chaos.ground import (
    API_PATIENCE,
    CIJOBS,
    DECOY_NODE,
    FREEZE_SECONDS,
    GROUP,
    LEADER_TRIES,
    LEASE,
    LEASES,
    LIVE,
    NAMESPACE,
    POD_TRIES,
    PODS,
    SECRETS,
    TERMINAL,
    VERSION,
    Echo,
)
from chaos.replica import Replica
from chaos.rest import Rest, RestError, retrying
from testground import cluster
from testground.plans import ATTEMPT_LABEL, JOB_LABEL

Json = dict[str, Any]


@dataclass(frozen=True)
class _Later:
    """A fault put off because it could not be done yet."""

    tries: int


@dataclass
class Driver:
    """Plays the scenario against the cluster, one due action at a time."""

    scenario: plan.Scenario
    root: Path
    rest: Rest
    replicas: list[Replica]
    rng: random.Random
    echo: Echo
    done: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    decoys: list[tuple[str, str, str]] = field(default_factory=list)  # kind, name, rv
    created: dict[str, str] = field(default_factory=dict)  # uid -> name
    t0: float = 0.0

    def __post_init__(self) -> None:
        self.plans = {j.name: j for j in self.scenario.jobs}

    def now(self) -> float:
        return time.monotonic() - self.t0

    def call(
        self, what: str, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()
    ) -> tuple[int, Json]:
        return retrying(what, lambda: self.rest.request(method, path, body, ok), API_PATIENCE)

    # --- the cluster's side ------------------------------------------------------------------

    def leader(self) -> Replica | None:
        try:
            _, lease = retrying(
                "read the Lease", lambda: self.rest.request("GET", f"{LEASES}/{LEASE}"), 30
            )
        except RuntimeError:
            return None
        holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
        for r in self.replicas:
            if r.pid is not None and not r.down and holder.endswith(f"-{r.pid}"):
                return r
        return None

    def supervise(self) -> None:
        """Restarts a replica whose process ended by itself, as its Deployment would."""
        for r in self.replicas:
            code = r.exited()
            if not r.down and not r.frozen and code is not None:
                r.exits.append(code)
                self.echo(f"replica {r.user} exited with code {code}: restarting it")
                r.start()

    def create_job(self, job: plan.JobPlan) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CiJob",
            "metadata": {"name": job.name},
            "spec": job.spec,
        }

        def create() -> Json:
            code, made = self.rest.request("POST", CIJOBS, body, ok=(409,))
            if code != 409:
                return made
            # Made by a try whose answer was lost, or the deleted one is not gone yet.
            _, got = self.rest.request("GET", f"{CIJOBS}/{job.name}")
            if got["metadata"]["uid"] in self.created:
                raise RestError("create CiJob", 503, "the deleted CiJob is still there")
            return got

        made = retrying(f"create CiJob {job.name}", create, API_PATIENCE)
        self.created[made["metadata"]["uid"]] = job.name

    def make_decoys(self, job: plan.JobPlan) -> None:
        labels = {JOB_LABEL: job.name}
        made: list[tuple[str, str, Json]] = []
        if job.decoy_pod_attempt is not None:
            n = job.decoy_pod_attempt
            pod_labels = {**labels, ATTEMPT_LABEL: str(n)}
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{job.name}-{n}", "labels": pod_labels},
                "spec": {
                    "nodeName": DECOY_NODE,
                    "restartPolicy": "Never",
                    "containers": [{"name": "build", "image": plan.IMAGE}],
                },
            }
            made.append(("Pod", PODS, pod))
        if job.decoy_secret:
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{job.name}-registry-credentials", "labels": labels},
                "type": "Opaque",
                "stringData": {"note": "a user's own Secret, not the operator's"},
            }
            made.append(("Secret", SECRETS, secret))
        for kind, path, body in made:
            _, obj = self.call(f"create a decoy {kind}", "POST", path, body)
            meta = obj["metadata"]
            self.decoys.append((kind, meta["name"], meta["resourceVersion"]))

    def recreate(self, name: str) -> None:
        self.call(f"delete CiJob {name}", "DELETE", f"{CIJOBS}/{name}", ok=(404,))
        self.create_job(self.plans[name])
        self.echo(f"CiJob {name} deleted and created again")

    def hit_pod(self, evict: bool) -> bool:
        """Deletes (or evicts) one pod of a CiJob on the node, chosen at random."""
        _, listing = self.call("list pods", "GET", f"{PODS}?labelSelector={JOB_LABEL}")
        candidates = [
            p
            for p in listing.get("items", [])
            if p["metadata"].get("ownerReferences") and not p["metadata"].get("deletionTimestamp")
            and p["spec"].get("nodeName") and p.get("status", {}).get("phase") in LIVE
        ]  # fmt: skip
        if not candidates:
            return False
        running = [p for p in candidates if p["status"]["phase"] == "Running"]
        pod = self.rng.choice(running or candidates)
        name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
        options = {"preconditions": {"uid": uid}}
        if evict:
            eviction = {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "deleteOptions": options,
            }
            code, _ = self.call(
                "evict a pod", "POST", f"{PODS}/{name}/eviction", eviction, ok=(404, 409)
            )
        else:
            code, _ = self.call("delete a pod", "DELETE", f"{PODS}/{name}", options, ok=(404, 409))
        if code in (404, 409):
            return False  # gone meanwhile
        self.echo(f"pod {name} {'evicted' if evict else 'deleted'}")
        return True

    # --- the timeline --------------------------------------------------------------------------

    def do(self, kind: str, arg: Any, queue: list[tuple[float, int, str, Any]]) -> None:
        if kind == "create":
            self.make_decoys(arg)
            self.create_job(arg)
            return
        if kind == "restart-replica":
            arg.start()
        elif kind == "thaw":
            arg.thaw()
        elif kind == plan.KILL:
            live = [r for r in self.replicas if not r.down]
            target = self.leader() or (self.rng.choice(live) if live else None)
            if target is None:  # both killed moments ago, not restarted yet: again soon
                heapq.heappush(queue, (self.now() + 1.0, -1, kind, arg))
                return
            target.kill()
            later = self.now() + self.rng.uniform(0.5, 2.0)
            heapq.heappush(queue, (later, -1, "restart-replica", target))
        elif kind == plan.FREEZE:
            leader = self.leader()
            if leader is None or leader.frozen:
                # No live holder yet (a dead one's lease has not expired): ask again soon.
                tries = arg.tries if isinstance(arg, _Later) else 0
                if tries < LEADER_TRIES:
                    heapq.heappush(queue, (self.now() + 2.0, -1, kind, _Later(tries + 1)))
                else:
                    self.skipped[kind] += 1
                    self.echo("no live leader to freeze in time")
                return
            leader.freeze()
            heapq.heappush(queue, (self.now() + FREEZE_SECONDS, -1, "thaw", leader))
        elif kind == plan.RESTART_APISERVER:
            cluster.restart("kube-apiserver", self.root, echo=self.echo)
        elif kind == plan.RESTART_ETCD:
            cluster.restart("etcd", self.root, echo=self.echo)
        elif kind in plan.POD_FAULTS:
            if not self.hit_pod(kind == plan.EVICT_POD):
                tries = arg.tries if isinstance(arg, _Later) else 0
                if tries < POD_TRIES:  # no pod on the node right now: look again soon
                    heapq.heappush(queue, (self.now() + 1.0, -1, kind, _Later(tries + 1)))
                else:
                    self.skipped[kind] += 1
                return
        elif kind == plan.RECREATE:
            self.recreate(arg.job)
        self.done[kind] += 1

    def play(self) -> None:
        queue: list[tuple[float, int, str, Any]] = []
        for i, j in enumerate(self.scenario.jobs):
            queue.append((j.at, i, "create", j))
        for i, f in enumerate(self.scenario.faults):
            queue.append((f.at, len(self.scenario.jobs) + i, f.kind, f))
        heapq.heapify(queue)
        hard_stop = self.scenario.size.seconds * 3 + 600
        steps = 0
        while queue and self.now() < hard_stop and steps < 1_000_000:
            steps += 1
            self.supervise()
            at, _, kind, arg = queue[0]
            if at > self.now():
                time.sleep(min(at - self.now(), 0.5))
                continue
            heapq.heappop(queue)
            self.do(kind, arg, queue)
        if queue:
            raise RuntimeError(f"chaos: {len(queue)} actions left undone after {self.now():.0f} s")

    def jobs(self) -> list[Json]:
        _, listing = self.call("list CiJobs", "GET", CIJOBS)
        items: list[Json] = listing.get("items", [])
        return items

    def pods(self) -> list[Json]:
        _, listing = self.call("list pods", "GET", PODS)
        items: list[Json] = listing.get("items", [])
        return items

    def settle(self, seconds: float) -> float:
        """Waits (bounded) until every job is terminal; returns how long it took."""
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            self.supervise()
            if all((j.get("status") or {}).get("phase") in TERMINAL for j in self.jobs()):
                break
            time.sleep(1.0)
        return time.monotonic() - began

    def settle_pods(self, seconds: float) -> float:
        """Waits (bounded) until no pod of a terminal or deleted job is Pending or Running."""
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            live_jobs = {
                j["metadata"]["uid"]
                for j in self.jobs()
                if (j.get("status") or {}).get("phase") not in TERMINAL
            }
            busy = [
                p
                for p in self.pods()
                if (p.get("status") or {}).get("phase") in LIVE
                and p["metadata"].get("ownerReferences")
                and p["metadata"]["ownerReferences"][0]["uid"] not in live_jobs
            ]
            if not busy:
                break
            time.sleep(1.0)
        return time.monotonic() - began

    def decoys_after(self) -> list[Decoy]:
        found = []
        for kind, name, rv in self.decoys:
            path = f"{PODS if kind == 'Pod' else SECRETS}/{name}"
            code, obj = self.call(f"read decoy {kind} {name}", "GET", path, ok=(404,))
            after = None if code == 404 else str(obj["metadata"]["resourceVersion"])
            found.append(Decoy(kind, name, rv, after))
        return found
