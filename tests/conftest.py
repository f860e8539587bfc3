"""Pytest fixtures: the real control plane (once per session), namespaces, CRDs and kubesim."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import settings
from kubernetes import client, config

from integration.support import fresh_namespace
from testground import cluster as testground
from testground.kubesim import KubeSim
from testground.plans import Behaviour
from testground.waits import wait_for

REPO = Path(__file__).resolve().parents[1]
# No timing assertions (speed is `make bench`'s): hypothesis's 200 ms per example is one, and
# fails on a loaded machine with two workers.
settings.register_profile("cijob", deadline=None)
settings.load_profile("cijob")
# The namespaces this session made: the session's kubelet simulator runs only their pods.
SESSION_NAMESPACES: set[str] = set()
CRD_DIR = REPO / "crds"
Completed = subprocess.CompletedProcess[str]
Run = Callable[..., Completed]


@dataclass(frozen=True)
class Cluster:
    """The control plane the tests talk to."""

    kubeconfig: Path
    bin: Path  # kubectl, helm and the daemons
    started: bool  # whether this session started it (and so stops it)


# What the machine has one of (the real node's bridge, registry port and 10.96.0.1 link): the
# tests marked so run in one pytest-xdist worker, one after another (`make test` runs
# `--dist loadgroup`); the group is added here, so a new such test needs only its mark.
MACHINE_WIDE = ("realnode",)
MACHINE_GROUP = "machine-wide"


def _workers(config: pytest.Config) -> int:
    """How many pytest-xdist workers run this session (0 without xdist)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return int(workerinput["workercount"])
    n = getattr(config.option, "numprocesses", None)
    return n if isinstance(n, int) else (2 if n else 0)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CIJOB_TEST_KUBECONFIG") and _workers(config) > 1:
        raise pytest.UsageError(
            "CIJOB_TEST_KUBECONFIG names one cluster, whose kubelet simulator one session "
            "plays: run with -n 0 (make test PYTEST_WORKERS=0)"
        )
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and _workers(config) > 1:
        # Each worker its own control plane, beside the checkout's, on the same binaries.
        root = testground.default_root() / "workers" / str(workerinput["workerid"])
        testground.beside(root)
        os.environ["CIJOB_TESTGROUND_DIR"] = str(root)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/integration needs the control plane; mark it so `-m "not cluster"`
    # selects the unit tests alone.
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.cluster)
        if any(item.get_closest_marker(name) for name in MACHINE_WIDE):
            item.add_marker(pytest.mark.xdist_group(MACHINE_GROUP))


def _running_testground(kubeconfig: str) -> bool:
    """Whether `kubeconfig` is the admin kubeconfig of a healthy test ground."""
    path = Path(kubeconfig).resolve()
    return path.name == "kubeconfig" and testground.status(path.parent) is not None


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """The test control plane: reused when $CIJOB_TEST_KUBECONFIG is set or $KUBECONFIG is a
    running test ground's, else started now and stopped at the end of the session."""
    bin_dir = testground.default_root() / "bin"
    explicit = os.environ.get("CIJOB_TEST_KUBECONFIG")
    if explicit:
        yield Cluster(Path(explicit), bin_dir, started=False)
        return
    env = os.environ.get("KUBECONFIG")
    # Workers of one session each start their own (two simulators cannot share a node).
    if env and _workers(pytestconfig) <= 1 and _running_testground(env):
        yield Cluster(Path(env).resolve(), Path(env).resolve().parent / "bin", started=False)
        return
    try:
        state, started = testground.up(echo=lambda line: print(line, flush=True))
    except testground.ClusterError as e:
        pytest.fail(f"the test control plane did not start: {e}", pytrace=False)
    try:
        yield Cluster(Path(state.kubeconfig), bin_dir, started)
    finally:
        if started:
            testground.down(echo=lambda line: None)


@pytest.fixture(scope="session")
def kubeconfig(cluster: Cluster) -> Path:
    """Path of the admin kubeconfig."""
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """An admin `kubernetes.client.ApiClient` (the sync client)."""
    api_client = config.new_client_from_config(str(kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield api_client
    finally:
        api_client.close()


def _runner(binary: Path, kubeconfig: Path) -> Run:
    def run(
        *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        proc = subprocess.run(
            [str(binary), *args], env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"{binary.name} {' '.join(args)} exited {proc.returncode}:\n"
                f"{proc.stdout}\n{proc.stderr}",
                pytrace=False,
            )
        return proc

    return run


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster) -> Run:
    """Runs the test ground's kubectl against the cluster: kubectl("get", "pods", check=False)."""
    return _runner(cluster.bin / "kubectl", cluster.kubeconfig)


@pytest.fixture(scope="session")
def helm(cluster: Cluster) -> Run:
    """Runs the test ground's helm with the cluster's kubeconfig."""
    return _runner(cluster.bin / "helm", cluster.kubeconfig)


def _namespace_name(test_name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"{base or 't'}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, run by the session's kubelet simulator."""
    name = _namespace_name(request.node.name)
    SESSION_NAMESPACES.add(name)
    with fresh_namespace(api, name):
        yield name


def _crd_names(paths: list[Path]) -> list[str]:
    names = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                names.append(doc["metadata"]["name"])
    return names


@pytest.fixture(scope="session")
def crds(cluster: Cluster, kubectl: Run, api: client.ApiClient) -> list[str]:
    """Applies every crds/*.yaml and waits until each CRD is Established; returns their names."""
    paths = sorted(CRD_DIR.glob("*.yaml")) + sorted(CRD_DIR.glob("*.yml"))
    if not paths:
        return []
    for path in paths:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    ext = client.ApiextensionsV1Api(api)
    names = _crd_names(paths)
    for name in names:

        def established(name: str = name) -> bool:
            crd = ext.read_custom_resource_definition(name)
            conditions = (crd.status.conditions if crd.status else None) or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        wait_for(f"CRD {name} to be Established", established)
    return names


@pytest.fixture(scope="session")
def kubesim_session(cluster: Cluster, api: client.ApiClient) -> Iterator[KubeSim]:
    """One simulated node for the whole session (see the `kubesim` fixture)."""
    sim = KubeSim(str(cluster.kubeconfig), namespaces=SESSION_NAMESPACES)
    try:
        sim.start()
    except Exception as e:  # the reason must show, not a skip
        pytest.fail(f"the kubelet simulator did not start: {e}", pytrace=False)
    try:
        yield sim
    finally:
        if not cluster.started:
            _let_deletions_finish(api, sim)
        sim.stop()


def _let_deletions_finish(api: client.ApiClient, sim: KubeSim, timeout: float = 20.0) -> None:
    # A reused cluster outlives the session: its deleted namespaces' pods still need the
    # simulated kubelet to finish their deletion, or the namespaces stay Terminating.
    core = client.CoreV1Api(api)

    def ours_left() -> list[str]:
        pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={sim.node_name}")
        return [
            f"{p.metadata.namespace}/{p.metadata.name}"
            for p in pods.items
            if p.metadata and p.metadata.namespace in SESSION_NAMESPACES
        ]

    deadline = time.monotonic() + timeout
    while ours_left() and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.fixture
def kubesim(kubesim_session: KubeSim) -> Iterator[KubeSim]:
    """The running kubelet simulator; the test fails if it hit an API error meanwhile.

    Plan a pod's behaviour before creating it:
    `kubesim.plan_job(namespace, job, Behaviour.exits(3), attempt=1)`.
    """
    sim = kubesim_session
    seen = len(sim.errors)
    sim.default = Behaviour()
    yield sim
    new = sim.errors[seen:]
    if new:
        pytest.fail("kubesim hit errors during the test:\n" + "\n".join(new), pytrace=False)
