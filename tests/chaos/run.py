"""One chaos run: its own test ground (with an audit log), the simulated node, two operator
replicas with leader election, the scenario's jobs and faults, then the evidence and checks."""

from __future__ import annotations

import contextlib
import heapq
import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos import audit, checks, plan
from chaos.checks import Check, Decoy, Evidence
from chaos.rest import Rest, RestError, retrying
from integration.support import Operator
from testground import cluster
from testground.kubeapi import load_endpoint
from testground.kubesim import KubeSim
from testground.plans import ATTEMPT_LABEL, JOB_LABEL

Json = dict[str, Any]
Echo = Callable[[str], None]

NAMESPACE = "chaos"
LEASE = "cijob-chaos"
LEASE_SECONDS = 15  # the operator's (cijob.leader.Timing)
FREEZE_SECONDS = LEASE_SECONDS + 10  # past the lease, so the standby takes over meanwhile
LEADER_TRIES = 20  # 2 s apart: long enough for a dead holder's lease to expire
POD_TRIES = 10  # 1 s apart
DECOY_NODE = "chaos-decoy-node"  # no node plays it: a decoy pod stays as it was made
GROUP, VERSION, PLURAL = "cijob.dev", "v1alpha1", "cijobs"
OPERATOR_SETTINGS = {"imagePullGraceSeconds": 2}
CIJOBS = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
SECRETS = f"/api/v1/namespaces/{NAMESPACE}/secrets"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"
LIVE = ("Pending", "Running")
SIM_WRITE_ATTEMPTS = 30  # about 3.5 minutes of retries: longer than any restart here
API_PATIENCE = 180.0  # how long a call of the driver is retried while the control plane is away
TERMINAL = ("Succeeded", "Failed", "Canceled")
REPO = Path(__file__).resolve().parents[2]


def default_root() -> Path:
    """The chaos test ground's state: `.cluster/chaos` beside the usual one."""
    return cluster.default_root() / "chaos"


@dataclass
class Result:
    """What a run did and what it found."""

    scenario: plan.Scenario
    seconds: float
    figures: dict[str, Any]
    checks: list[Check]
    workdir: Path

    @property
    def violations(self) -> int:
        return checks.violations(self.checks)


class Replica:
    """One operator replica as a Deployment keeps one: a new process (and client certificate,
    so a new user in the audit log) each time it starts."""

    def __init__(self, letter: str, root: Path, workdir: Path, echo: Echo) -> None:
        self.letter, self.root, self.workdir, self.echo = letter, root, workdir, echo
        self.op: Operator | None = None
        self.users: list[str] = []
        self.frozen = False
        self.down = False  # killed on purpose, restart pending
        self.exits: list[int] = []  # exit codes of processes that ended by themselves

    def start(self) -> None:
        user = f"chaos-op-{self.letter}{len(self.users) + 1}"
        kubeconfig = cluster.client_kubeconfig(user, "system:masters", self.root)
        election = ["--leader-elect", "--lease-namespace", NAMESPACE, "--lease-name", LEASE]
        op = Operator(
            str(kubeconfig), [NAMESPACE], self.workdir / user, settings=OPERATOR_SETTINGS,
            log_level="info", extra_args=election,
        )  # fmt: skip
        self.op = op.start()
        self.users.append(user)
        self.down = False
        self.echo(f"replica {user} started (pid {self.pid})")

    @property
    def pid(self) -> int | None:
        return self.op.proc.pid if self.op and self.op.proc else None

    @property
    def user(self) -> str:
        return self.users[-1]

    def exited(self) -> int | None:
        proc = self.op.proc if self.op else None
        return None if proc is None else proc.poll()

    def kill(self) -> None:
        self.thaw()
        if self.op is not None:
            self.op.kill()
        self.down = True
        self.echo(f"replica {self.user}: SIGKILL")

    def freeze(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGSTOP)
            self.frozen = True
            self.echo(f"replica {self.user}: SIGSTOP")

    def thaw(self) -> None:
        if self.frozen and self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
            self.frozen = False
            self.echo(f"replica {self.user}: SIGCONT")

    def stop(self) -> None:
        self.thaw()
        if self.op is not None:
            self.op.stop()


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
            target = self.leader() or self.rng.choice([r for r in self.replicas if not r.down])
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


def _kubectl(root: Path, kubeconfig: str, *args: str) -> None:
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    proc = subprocess.run(
        [str(cluster.Layout(root).binary("kubectl")), *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}")


def _prepare(root: Path, echo: Echo) -> cluster.State:
    """A fresh control plane of its own (sharing the built binaries), audit log on."""
    root.mkdir(parents=True, exist_ok=True)
    binaries = cluster.Layout(root).bin
    if not binaries.exists() and not binaries.is_symlink():
        binaries.symlink_to(cluster.Layout(cluster.default_root()).bin.resolve())
    policy = root / "audit-policy.yaml"
    policy.write_text(audit.POLICY)
    cluster.down(root, echo=lambda _: None)
    state, _ = cluster.up(root, echo=echo, audit_policy=policy)
    crds = sorted((REPO / "crds").glob("*.yaml"))
    for path in crds:
        _kubectl(root, state.kubeconfig, "apply", "--server-side", "-f", str(path))
    _kubectl(root, state.kubeconfig, "wait", "--for=condition=Established", "--timeout=60s",
             "crd/cijobs.cijob.dev")  # fmt: skip
    _kubectl(root, state.kubeconfig, "create", "namespace", NAMESPACE)
    _kubectl(root, state.kubeconfig, "wait", "--for=create", "--timeout=60s", "-n", NAMESPACE,
             "serviceaccount/default")  # fmt: skip
    return state


def run(
    size: plan.Size,
    seed: int,
    workdir: Path,
    root: Path | None = None,
    echo: Echo = print,
    keep: bool = False,
) -> Result:
    """Runs the scenario of `size` and `seed`; operator logs and the report go to `workdir`."""
    root = root or default_root()
    shutil.rmtree(workdir, ignore_errors=True)  # the logs of an earlier run of this seed
    workdir.mkdir(parents=True)
    scenario = plan.make(size, seed)
    began = time.monotonic()
    state = _prepare(root, echo)
    rest = Rest(load_endpoint(state.kubeconfig))
    sim = KubeSim(state.kubeconfig, namespaces={NAMESPACE}, write_attempts=SIM_WRITE_ATTEMPTS)
    replicas = [Replica(x, root, workdir, echo) for x in "ab"]
    try:
        sim.start()
        for job in scenario.jobs:
            for n, behaviour in enumerate(job.behaviours, 1):
                sim.plan_job(NAMESPACE, job.name, behaviour, attempt=n)
        for r in replicas:
            r.start()
        driver = Driver(scenario, root, rest, replicas, random.Random(seed + 1), echo)
        driver.t0 = time.monotonic()
        wall_t0 = driver.t0 + sim.clock_offset  # the same instant on the wall clock
        echo(f"chaos: {len(scenario.jobs)} jobs, {len(scenario.faults)} faults, seed {seed}")
        driver.play()
        played = driver.now()
        settled = driver.settle(size.settle_seconds)
        pods_settled = driver.settle_pods(30.0)
        jobs, pods, decoys = driver.jobs(), driver.pods(), driver.decoys_after()
        records = sim.records()
    finally:
        for r in replicas:
            r.stop()
        sim.stop()
        if not keep:
            cluster.down(root, echo=lambda _: None)
    writes = audit.writes(audit.read(cluster.Layout(root).audit_log))
    held = audit.tenures(writes, NAMESPACE, LEASE)
    users = {u for r in replicas for u in r.users}
    strays = audit.strays(writes, held, users)
    incarnations = dict(driver.created)
    for w in writes:
        if w.resource == PLURAL and w.verb == "create" and w.response:
            incarnations[w.response["metadata"]["uid"]] = w.name
    evidence = Evidence(
        jobs=jobs,
        pods=pods,
        records=records,
        creates=audit.pod_creates(writes, NAMESPACE, ATTEMPT_LABEL),
        incarnations=incarnations,
        statuses=audit.status_writes(writes, NAMESPACE),
        decoys=decoys,
        strays=strays,
        t0=driver.t0,
        wall_t0=wall_t0,
    )
    replica_writes = [
        w for w in writes if w.user in users and w.resource != "leases"
        and not w.resource.endswith("reviews")
    ]  # fmt: skip
    found = checks.run_all(evidence, len(replica_writes))
    outcomes = Counter(
        f"{(j.get('status') or {}).get('phase')}/{(j.get('status') or {}).get('reason') or '-'}"
        for j in jobs
    )
    own_creates = [c for c in evidence.creates if c.owner_uid in incarnations]
    figures: dict[str, Any] = {
        "seed": seed,
        "jobs (names)": len(scenario.jobs),
        "CiJobs created (with re-creations)": len(incarnations),
        "pods created by the operator": len(own_creates),
        "pods the node ran": sum(1 for r in records if r.ran_from is not None),
        "faults done": dict(sorted(driver.done.items())),
        "faults not possible when due": dict(sorted(driver.skipped.items())),
        "replica processes": len(users),
        "replica exits by themselves": [c for r in replicas for c in r.exits],
        "lease tenures": len(held),
        "writes by replicas (Lease aside)": len(replica_writes),
        "outcomes": dict(sorted(outcomes.items())),
        "seconds: faults and jobs": round(played, 1),
        "seconds: until every job was terminal": round(settled, 1),
        "seconds: until their pods were": round(pods_settled, 1),
        "simulator errors (API away)": len(sim.errors),
    }
    return Result(scenario, time.monotonic() - began, figures, found, workdir)


def report(result: Result) -> str:
    """The figures and each check's count, then the violations (at most 25 per check)."""
    lines = [f"chaos: run of {result.seconds:.0f} s (logs in {result.workdir})"]
    for key, value in result.figures.items():
        lines.append(f"  {key}: {value}")
    lines.append("checks (violations / cases):")
    for c in result.checks:
        mark = "ok  " if not c.violations else "FAIL"
        noted = f" ({len(c.notes)} accepted, see below)" if c.notes else ""
        lines.append(f"  {mark} {c.name}: {len(c.violations)} / {c.checked}{noted}")
    for c in result.checks:
        for title, cases in (("", c.violations), (" (accepted)", c.notes)):
            if cases:
                lines.append(f"--- {c.name}{title}: {len(cases)}")
                lines += [f"    {v}" for v in cases[:25]]
                if len(cases) > 25:
                    lines.append(f"    ... {len(cases) - 25} more in report.txt")
    return "\n".join(lines)
