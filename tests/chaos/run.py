"""One chaos run: its own test ground (with an audit log), the simulated node, two operator
replicas with leader election, the scenario's jobs and faults, then the evidence and checks."""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos import audit, checks, plan
from chaos.checks import Check, Evidence
from chaos.driver import Driver
from chaos.ground import LEASE, NAMESPACE, PLURAL, SIM_WRITE_ATTEMPTS, Echo, default_root, prepare
from chaos.replica import Replica
from chaos.rest import Rest
from testground import cluster
from testground.kubeapi import load_endpoint
from testground.kubesim import KubeSim
from testground.plans import ATTEMPT_LABEL


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
    state = prepare(root, echo)
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
