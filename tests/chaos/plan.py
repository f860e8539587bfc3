"""The random scenario of a chaos run: the jobs, what the node does to each attempt, the faults."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from testground.plans import Behaviour

Json = dict[str, Any]

# Faults that hit the whole system (spread evenly over the run) and faults that hit one pod.
KILL = "sigkill-operator"
RESTART_APISERVER = "restart-kube-apiserver"
RESTART_ETCD = "restart-etcd"
FREEZE = "sigstop-leader"
DELETE_POD = "delete-pod"
EVICT_POD = "evict-pod"
RECREATE = "delete-and-recreate-job"
SYSTEM_FAULTS = (KILL, RESTART_APISERVER, RESTART_ETCD, FREEZE)
POD_FAULTS = (DELETE_POD, EVICT_POD)

ATTEMPTS = 3  # retry.max is at most 2
IMAGE = "alpine:3.20"
REGISTRY = "registry.chaos.test:5000"  # jobs with DOCKER_AUTH_CONFIG pull from here
AUTH = {"auths": {REGISTRY: {"username": "ci", "password": "chaos-not-a-secret"}}}


@dataclass(frozen=True)
class Size:
    """How much of everything one run does."""

    jobs: int
    seconds: float  # over which jobs are created and system faults injected
    kills: int
    apiserver_restarts: int
    etcd_restarts: int
    freezes: int
    pod_deletions: int
    pod_evictions: int
    recreates: int
    decoy_pods: int
    decoy_secrets: int
    settle_seconds: float  # how long the jobs may take to end after the last fault


SMALL = Size(
    jobs=36, seconds=70, kills=1, apiserver_restarts=1, etcd_restarts=1, freezes=1,
    pod_deletions=3, pod_evictions=2, recreates=3, decoy_pods=2, decoy_secrets=2,
    settle_seconds=150,
)  # fmt: skip
FULL = Size(
    jobs=400, seconds=300, kills=4, apiserver_restarts=2, etcd_restarts=2, freezes=2,
    pod_deletions=25, pod_evictions=15, recreates=25, decoy_pods=12, decoy_secrets=8,
    settle_seconds=300,
)  # fmt: skip


@dataclass(frozen=True)
class JobPlan:
    """One CiJob name: its spec, its attempts' behaviours, its decoys and when it is created."""

    name: str
    spec: Json
    behaviours: tuple[Behaviour, ...]  # attempt 1, 2, 3
    at: float  # seconds from the start
    decoy_pod_attempt: int | None = None  # a foreign pod named `<job>-<n>` made before the job
    decoy_secret: bool = False  # a foreign Secret of the pull Secret's name made before the job


@dataclass(frozen=True)
class Fault:
    at: float
    kind: str
    job: str | None = None  # RECREATE's job


@dataclass(frozen=True)
class Scenario:
    seed: int
    size: Size
    jobs: tuple[JobPlan, ...]
    faults: tuple[Fault, ...]


def _behaviour(rng: random.Random) -> Behaviour:
    """What the node does with one attempt's pod, drawn by weight."""
    quick = round(rng.uniform(0.2, 3.0), 2)
    choices: list[tuple[int, Behaviour]] = [
        (40, Behaviour.succeeds(quick)),
        (15, Behaviour.exits(rng.choice((1, 2, 42)), quick)),
        (10, Behaviour.succeeds(round(rng.uniform(6.0, 14.0), 2))),
        (6, Behaviour.oom_killed(quick)),
        (6, Behaviour.evicted(quick)),
        (7, Behaviour.image_pull_failure()),
        (4, Behaviour.create_config_error()),
        (3, Behaviour.invalid_image()),
        (2, Behaviour.no_shell()),
        (7, Behaviour.held()),  # runs until the pod's deadline or its deletion
    ]
    weights = [w for w, _ in choices]
    return rng.choices([b for _, b in choices], weights)[0]


def _spec(rng: random.Random, auth: bool) -> Json:
    spec: Json = {
        "image": f"{REGISTRY}/ci/alpine:3.20" if auth else IMAGE,
        "script": ["make test"],
        "retry": {"max": rng.choices((2, 1, 0), (70, 15, 15))[0]},
        "timeout": rng.choices(("30s", "8s"), (85, 15))[0],
    }
    if auth:
        spec["variables"] = {"DOCKER_AUTH_CONFIG": json.dumps(AUTH)}
    return spec


def make(size: Size, seed: int) -> Scenario:
    """The scenario of `size` drawn from `seed` (the same seed gives the same run plan)."""
    rng = random.Random(seed)
    names = [f"c{i:03d}" for i in range(size.jobs)]
    decoy_pods = set(rng.sample(names, size.decoy_pods))
    decoy_secrets = set(rng.sample(names, size.decoy_secrets))
    jobs = []
    for i, name in enumerate(names):
        auth = name in decoy_secrets or rng.random() < 0.1
        jobs.append(
            JobPlan(
                name=name,
                spec=_spec(rng, auth),
                behaviours=tuple(_behaviour(rng) for _ in range(ATTEMPTS)),
                at=round(size.seconds * 0.9 * i / max(size.jobs, 1), 3),
                decoy_pod_attempt=rng.choice((1, 2)) if name in decoy_pods else None,
                decoy_secret=name in decoy_secrets,
            )
        )
    system = (
        [KILL] * size.kills
        + [RESTART_APISERVER] * size.apiserver_restarts
        + [RESTART_ETCD] * size.etcd_restarts
        + [FREEZE] * size.freezes
    )
    rng.shuffle(system)
    faults = [
        Fault(round(size.seconds * (k + 1) / (len(system) + 1), 3), kind)
        for k, kind in enumerate(system)
    ]
    for kind, count in ((DELETE_POD, size.pod_deletions), (EVICT_POD, size.pod_evictions)):
        faults += [Fault(round(rng.uniform(3, size.seconds), 3), kind) for _ in range(count)]
    for name in rng.sample(names, size.recreates):
        created = next(j.at for j in jobs if j.name == name)
        faults.append(Fault(round(created + rng.uniform(0.5, 8.0), 3), RECREATE, name))
    faults.sort(key=lambda f: f.at)
    return Scenario(seed, size, tuple(jobs), tuple(faults))
