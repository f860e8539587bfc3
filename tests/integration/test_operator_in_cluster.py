"""The product as shipped, on the REAL node: the image built from the Dockerfile
(tests/testground/operatorimage.py), installed with the Helm chart, the operator running as a
pod under the chart's ServiceAccount, with in-cluster configuration.

Each test reads the operator pods' own logs: every API call it made must have succeeded (no 403
anywhere), and `kubectl auth can-i` shows what it must not do is refused. Part of `make test`;
where the machine cannot build the image or run the node these tests FAIL with what is missing
(`-m "not realnode"` deselects them). Pods reach the API server at the `kubernetes` Service's
address, which the node relays to the API server on loopback (realnode._api_relay).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from integration.support import CiJobs, fresh_namespace
from integration.test_chart_install import (
    CHART,
    NEEDED,
    NEVER_CLUSTER,
    NEVER_NAMESPACED,
    Check,
    Kube,
    release_for,
)
from testground import operatorimage, realnode
from testground.waits import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]

PLACEMENT = {
    "nodeSelector": {"kubernetes.io/hostname": realnode.NODE_NAME},
    "tolerations": [{"key": realnode.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
}
TIMEOUT = 180.0
PULL_SECRET = "operator-image-pull"  # the operator image's imagePullSecret
AUTH_SECRET = "job-registry-auth"  # dockerAuthConfig.existingSecret: jobs' registry credentials
# A refused API call, as kopf, the client and our code log it: 403 (RBAC) or 401 (the token);
# not the milliseconds of a timestamp (",403").
REFUSED = re.compile(r"(?<![\w,.:-])40[13](?![\w.:-])|forbidden|unauthorized", re.IGNORECASE)
Namespaces = Callable[[int], list[str]]


@dataclass(frozen=True)
class Pushed:
    """The operator image in the node's registry."""

    repository: str
    tag: str
    digest: str
    built: operatorimage.Built

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"


@pytest.fixture(scope="module")
def node(kubeconfig: Path) -> Iterator[realnode.NodeState]:
    """The real node (started if needed, and then stopped after this module)."""
    root = kubeconfig.resolve().parent
    missing = realnode.requirements(realnode.NodeLayout(realnode.cluster.Layout(root)))
    if missing:
        pytest.fail(
            "no real node on this machine: missing " + "; ".join(missing) + " (install as "
            ".ci/run does, or deselect these tests with -m 'not realnode')",
            pytrace=False,
        )
    try:
        state, started = realnode.up(root, echo=lambda line: print(line, flush=True))
    except realnode.NodeError as e:
        pytest.fail(f"the real node did not start: {e}", pytrace=False)
    try:
        yield state
    finally:
        if started:
            realnode.down(root, echo=lambda line: None)


@pytest.fixture(scope="module")
def image(node: realnode.NodeState) -> Pushed:
    """The operator image, built from the Dockerfile (or found in the cache), pushed."""
    missing = operatorimage.requirements()
    if missing:
        pytest.fail(
            "cannot build the operator image here: missing " + "; ".join(missing) + " (install "
            "as .ci/run does, or deselect these tests with -m 'not realnode')",
            pytrace=False,
        )
    try:
        built = operatorimage.ensure(echo=lambda line: print(line, flush=True))
        digest = operatorimage.push(
            built, node.registry, node.registry_user, node.registry_password
        )
    except operatorimage.ImageBuildError as e:
        pytest.fail(f"the operator image did not build or push: {e}", pytrace=False)
    ref = operatorimage.reference(node.registry, built)
    repository, tag = ref.rsplit(":", 1)
    return Pushed(repository, tag, digest, built)


@pytest.fixture
def kube(cluster: Any) -> Kube:
    return Kube(cluster)


@pytest.fixture
def namespaces(api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[Namespaces]:
    """Makes fresh namespaces the kubelet simulator never serves; deletes them afterwards."""
    with ExitStack() as stack:
        made: list[str] = []

        def make(count: int) -> list[str]:
            base = request.node.name[5:25].replace("_", "-").strip("-")
            names = [f"real-{base}-{len(made) + i}-{uuid.uuid4().hex[:5]}" for i in range(count)]
            for name in names:
                stack.enter_context(fresh_namespace(api, name))
            made.extend(names)
            return names

        yield make


@dataclass
class Release:
    """One `helm install` of the chart, its operator pods and everything they logged."""

    kube: Kube
    namespace: str
    name: str
    chart: Path = CHART
    logs: dict[str, str] = field(default_factory=dict)  # pod name -> its last log

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def secrets(self, node: realnode.NodeState) -> None:
        """The image pull Secret and the jobs' DOCKER_AUTH_CONFIG, in the release namespace."""
        auth = base64.b64encode(f"{node.registry_user}:{node.registry_password}".encode())
        pull = {"auths": {node.registry: {"auth": auth.decode()}}}
        for secret in (
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": PULL_SECRET},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": json.dumps(pull)},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": AUTH_SECRET},
                "stringData": {"DOCKER_AUTH_CONFIG": node.docker_auth_config()},
            },
        ):
            self.kube.kubectl("apply", "-n", self.namespace, "-f", "-", stdin=json.dumps(secret))

    def install(self, values: dict[str, Any], tmp: Path) -> None:
        path = tmp / f"values-{self.name}.yaml"
        path.write_text(yaml.safe_dump(values))
        self.kube.helm(
            "install", self.name, str(self.chart), "-n", self.namespace, "--values", str(path)
        )

    def pods(self) -> list[dict[str, Any]]:
        out = self.kube.kubectl(
            "get", "pods", "-n", self.namespace, "-o", "json",
            "-l", f"app.kubernetes.io/instance={self.name}",
        )  # fmt: skip
        pods: list[dict[str, Any]] = json.loads(out)["items"]
        self.collect(pods)
        return pods

    def collect(self, pods: list[dict[str, Any]]) -> None:
        """Keeps each pod's latest log (and its previous container's), before it is gone."""
        for pod in pods:
            name = pod["metadata"]["name"]
            statuses = pod.get("status", {}).get("containerStatuses") or []
            if not statuses or "waiting" in statuses[0].get("state", {}):
                continue
            proc = self.kube.run("kubectl", "logs", "-n", self.namespace, name, "-c", "operator")
            if proc.returncode == 0:
                self.logs[name] = proc.stdout
            if statuses[0].get("restartCount", 0):
                prev = self.kube.run(
                    "kubectl", "logs", "-n", self.namespace, name, "-c", "operator", "--previous"
                )
                self.logs[f"{name} (previous)"] = prev.stdout

    def ready(self, count: int, exclude: tuple[str, ...] = ()) -> list[str]:
        """Waits until `count` operator pods (none of `exclude`) are Ready; their names."""

        def check() -> list[str] | None:
            pods = [p for p in self.pods() if p["metadata"]["name"] not in exclude]
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            ok = [p["metadata"]["name"] for p in live if _ready(p)]
            return ok if len(ok) == count and len(live) == count else None

        return wait_for(f"{count} Ready operator pod(s) of {self.name}", check, timeout=TIMEOUT)

    def holder(self) -> str:
        out = self.kube.run(
            "kubectl", "get", "lease", self.name, "-n", self.namespace,
            "-o", "jsonpath={.spec.holderIdentity}",
        )  # fmt: skip
        return out.stdout.strip() if out.returncode == 0 else ""

    def leader(self, among: list[str]) -> str:
        """Waits until one of the pods `among` holds the Lease; its name."""

        def check() -> str | None:
            self.pods()
            held = self.holder()
            # The operator's identity is <hostname>-<pid>, the hostname being the pod's name.
            return next((p for p in among if held.startswith(p + "-")), None)

        return wait_for(f"one of {among} to hold the Lease {self.name}", check, timeout=TIMEOUT)

    def refused(self) -> list[str]:
        """Every line of every operator pod's log that shows a refused API call."""
        self.pods()
        assert self.logs, "no operator log was read"
        return [
            f"{pod}: {line}"
            for pod, text in self.logs.items()
            for line in text.splitlines()
            if REFUSED.search(line)
        ]

    def explain(self) -> str:
        pods = json.dumps([p.get("status", {}) for p in self.pods()], default=str)[:4000]
        logs = "\n".join(f"--- {pod} ---\n{text[-3000:]}" for pod, text in self.logs.items())
        return f"operator pods: {pods}\n{logs}"


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def values(image: Pushed, node: realnode.NodeState, **extra: Any) -> dict[str, Any]:
    """The chart's values for the real node: our image, its pull Secret, the node's taint."""
    return {
        "image": {
            "repository": image.repository,
            "tag": image.tag,
            "digest": image.digest,
            "pullPolicy": "IfNotPresent",
        },
        "imagePullSecrets": [{"name": PULL_SECRET}],
        **PLACEMENT,
        "dockerAuthConfig": {"existingSecret": AUTH_SECRET},
        # Cluster-scoped and already applied from crds/ by the `crds` fixture.
        "validationPolicy": {"enabled": False},
        # Jobs without an image get the node's busybox image: proof that the operator read
        # its configuration from the chart's ConfigMap.
        "defaults": {"image": node.image("sh")},
        **extra,
    }


def job(script: list[str], **extra: Any) -> dict[str, Any]:
    return {"script": script, **PLACEMENT, **extra}


def build_log(cijobs: CiJobs, namespace: str, pod: str) -> str:
    text: str = cijobs.core.read_namespaced_pod_log(pod, namespace, container="build")
    return text


def succeeded(cijobs: CiJobs, namespace: str, name: str, release: Release) -> str:
    """Waits for the CiJob to end; asserts it Succeeded; returns its build log."""
    status = cijobs.wait_phase(namespace, name, timeout=TIMEOUT)["status"]
    assert status["phase"] == "Succeeded", f"{status}\n{release.explain()}"
    return build_log(cijobs, namespace, status["podName"])


def node_layout(kube: Kube) -> realnode.NodeLayout:
    return realnode.NodeLayout(realnode.cluster.Layout(kube.cluster.kubeconfig.resolve().parent))


def liveness_failures(kube: Kube, release: Release) -> list[str]:
    """The operator pods' failed liveness probes. (A readiness probe may fail once while
    Python starts, before /healthz listens: that only delays Ready.)"""
    out = kube.kubectl(
        "get", "events", "-n", release.namespace, "-o", "json",
        "--field-selector", "reason=Unhealthy",
    )  # fmt: skip
    messages = [str(e["message"]) for e in json.loads(out)["items"]]
    return [m for m in messages if not m.startswith("Readiness probe")]


def test_image_is_built_from_the_dockerfile_runs_as_its_user_and_ships_git(
    image: Pushed,
    node: realnode.NodeState,
    kube: Kube,
    cijobs: CiJobs,
    namespaces: Namespaces,
    tmp_path: Path,
) -> None:
    built = image.built
    print(
        f"operator image {image.ref}: {built.compressed_bytes / 1e6:.1f} MB compressed, "
        f"{built.uncompressed_bytes / 1e6:.1f} MB uncompressed; built in "
        f"{built.build_seconds} s (base {built.base_seconds} s), from cache: {built.cached}"
    )
    assert built.user == "10001:10001"
    # The image itself, run by the operator on the real node: its user, git, the entry point.
    (ns,) = namespaces(1)
    release = Release(kube, ns, release_for(ns))
    release.secrets(node)
    release.install(values(image, node, watchNamespaces=[ns]), tmp_path)
    try:
        release.ready(1)
        spec = job(
            ["id -u", "id -g", "git --version", "cijob-operator --help | head -1"],
            image={"name": image.ref, "entrypoint": [""]},
        )
        cijobs.create(ns, "self", spec)
        log = succeeded(cijobs, ns, "self", release)
        assert "$ id -u\n10001\n" in log and "$ id -g\n10001\n" in log
        assert re.search(r"^git version 2\.\d+", log, re.MULTILINE), log
        assert "usage: cijob-operator" in log
        assert release.refused() == []
    finally:
        kube.run("helm", "uninstall", release.name, "-n", ns, "--wait")


def test_namespaced_install_runs_jobs_in_cluster_and_reaches_nothing_else(
    image: Pushed,
    node: realnode.NodeState,
    kube: Kube,
    cijobs: CiJobs,
    namespaces: Namespaces,
    tmp_path: Path,
) -> None:
    home, watched, unwatched = namespaces(3)
    release = Release(kube, home, release_for(home))
    release.secrets(node)
    kube.kubectl("create", "secret", "generic", "team-secret", "-n", unwatched,
                 "--from-literal=token=not-for-the-operator")  # fmt: skip
    release.install(values(image, node, watchNamespaces=[watched]), tmp_path)
    try:
        (pod,) = release.ready(1)
        assert release.leader([pod]) == pod
        # Created first, in a namespace it does not watch: never touched.
        cijobs.create(unwatched, "elsewhere", job(["echo never"]))
        # No image: the chart's defaults.image, read from the ConfigMap.
        cijobs.create(watched, "hello", job(["echo hello from $(hostname)", "id -u"]))
        log = succeeded(cijobs, watched, "hello", release)
        assert "hello from hello-1" in log, log
        # A job whose variablesFrom Secret is missing ends InvalidSpec (a `get` of a Secret
        # in the watched namespace: allowed, answered 404).
        cijobs.create(
            watched, "no-secret", job(["true"], variablesFrom=[{"secretRef": {"name": "nope"}}])
        )
        status = cijobs.wait_phase(watched, "no-secret", timeout=TIMEOUT)["status"]
        assert (status["phase"], status.get("reason")) == ("Failed", "InvalidSpec"), status
        elsewhere = cijobs.get(unwatched, "elsewhere")
        assert elsewhere is not None and "status" not in elsewhere, elsewhere
        assert cijobs.pods(unwatched, "elsewhere") == []

        sa = release.service_account
        assert kube.wrong_answers(sa, NEEDED, [watched], True) == []
        refused: list[Check] = [
            ("get", "secrets", ""),
            ("create", "pods", ""),
            ("delete", "pods", ""),
            ("get", "configmaps", ""),
            ("patch", "cijobs.cijob.dev", "status"),
        ]
        assert kube.wrong_answers(sa, refused, [unwatched, home, "default"], False) == []
        assert kube.wrong_answers(sa, NEVER_NAMESPACED, [watched], False) == []
        assert kube.wrong_answers(sa, NEVER_CLUSTER, [None], False) == []
        assert not kube.can_i(sa, "get", "secrets", namespace=unwatched, name="team-secret")

        assert release.refused() == [], release.explain()
        (after,) = release.ready(1)
        assert after == pod
        # Its API connections came through the node's relay of the kubernetes Service.
        ip = release.pods()[0]["status"]["podIP"]
        relay = node_layout(kube).cluster.log("socat").read_text()
        assert f"accepting connection from AF=2 {ip}:" in relay, relay[-2000:]
        status_of = release.pods()[0]["status"]["containerStatuses"][0]
        assert status_of["restartCount"] == 0, release.explain()
        assert liveness_failures(kube, release) == []
    finally:
        kube.run("helm", "uninstall", release.name, "-n", home, "--wait")


def _changed_chart(tmp: Path) -> Path:
    """A copy of the chart whose CRD has one more printer column and a new chart version."""
    chart = tmp / "cijob-operator"
    shutil.copytree(CHART, chart)
    crd_file = chart / "crds" / "cijob.dev_cijobs.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    for version in crd["spec"]["versions"]:
        version.setdefault("additionalPrinterColumns", []).append(
            {"name": "Project", "type": "string", "jsonPath": ".spec.project", "priority": 1}
        )
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = "0.1.1-test"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return chart


def _names(kube: Kube, namespace: str) -> set[str]:
    kinds = "all,configmaps,secrets,serviceaccounts,roles,rolebindings,leases,events"
    out = kube.kubectl("get", kinds, "-n", namespace, "-o", "name")
    # Events come and go with the pods; what an install leaves is everything else.
    return {line for line in out.split() if not line.startswith("event")}


def no_namespace_terminating(kube: Kube) -> None:
    """Waits until no namespace is being deleted: a cluster-wide operator sees their CiJobs,
    and the API server refuses (403) new objects in them, earlier tests' jobs included."""

    def terminating() -> list[str]:
        items = json.loads(kube.kubectl("get", "namespaces", "-o", "json"))["items"]
        return [n["metadata"]["name"] for n in items if n["status"]["phase"] == "Terminating"]

    wait_for("no namespace to be Terminating", lambda: not terminating(), timeout=TIMEOUT)


def _cluster_names(kube: Kube, release: str) -> set[str]:
    out = kube.kubectl(
        "get", "clusterroles,clusterrolebindings", "-o", "name",
        "-l", f"app.kubernetes.io/instance={release}",
    )  # fmt: skip
    return set(out.split())


def test_two_replicas_hand_over_then_upgrade_with_a_changed_crd_then_uninstall(
    image: Pushed,
    node: realnode.NodeState,
    kube: Kube,
    cijobs: CiJobs,
    namespaces: Namespaces,
    tmp_path: Path,
) -> None:
    home, jobs = namespaces(2)
    release = Release(kube, home, release_for(home))
    release.secrets(node)
    before = _names(kube, home)
    no_namespace_terminating(kube)
    release.install(values(image, node, replicaCount=2), tmp_path)  # a ClusterRole
    try:
        assert _cluster_names(kube, release.name), "the cluster-wide install made no ClusterRole"
        pods = release.ready(2)
        leader = release.leader(pods)
        cijobs.create(jobs, "long", job(["echo started", "sleep 600"]))
        running = cijobs.wait_phase(jobs, "long", "Running", timeout=TIMEOUT)
        long_pod = cijobs.pod(jobs, running["status"]["podName"])
        assert long_pod is not None

        sa = release.service_account
        assert kube.wrong_answers(sa, NEEDED, [jobs, None], True) == []
        assert kube.wrong_answers(sa, NEVER_NAMESPACED, [jobs, None], False) == []
        assert kube.wrong_answers(sa, NEVER_CLUSTER, [None], False) == []

        # Hand-over: the standby takes the Lease when the leader's pod is deleted.
        standby = next(p for p in pods if p != leader)
        release.pods()  # the leader's log, before it goes
        kube.kubectl("delete", "pod", leader, "-n", home, "--wait=false")
        assert release.leader([standby]) == standby
        cijobs.create(jobs, "after-handover", job(["echo handed over"]))
        assert "handed over" in succeeded(cijobs, jobs, "after-handover", release)
        release.ready(2, exclude=(leader,))

        # The documented upgrade: the CRD first (Helm never upgrades crds/), then the chart;
        # a configuration change rolls both operator pods while "long" runs.
        old_pods = release.ready(2, exclude=(leader,))
        chart = _changed_chart(tmp_path)
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(chart / "crds"))
        release.chart = chart
        kube.helm(
            "upgrade", release.name, str(chart), "-n", home, "--reuse-values",
            "--set", "imagePullGraceSeconds=90",
        )  # fmt: skip
        new_pods = release.ready(2, exclude=(leader, *old_pods))
        release.leader(new_pods)
        crd = json.loads(kube.kubectl("get", "crd", "cijobs.cijob.dev", "-o", "json"))
        columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        assert "Project" in [c["name"] for c in columns]
        after = cijobs.get(jobs, "long")
        assert after is not None
        assert after["metadata"]["uid"] == running["metadata"]["uid"]
        assert after["status"]["phase"] == "Running", after["status"]
        assert after["status"]["podName"] == running["status"]["podName"]
        pod_now = cijobs.pod(jobs, running["status"]["podName"])
        assert pod_now is not None
        assert pod_now["metadata"]["uid"] == long_pod["metadata"]["uid"]
        build = next(s for s in pod_now["status"]["containerStatuses"] if s["name"] == "build")
        assert "running" in build["state"] and build["restartCount"] == 0, build
        config = yaml.safe_load(
            json.loads(kube.kubectl("get", "configmap", release.name, "-n", home, "-o", "json"))[
                "data"
            ]["config.yaml"]
        )
        assert config["imagePullGraceSeconds"] == 90
        # The new operator handles the job the old one started.
        cijobs.patch_spec(jobs, "long", {"cancel": True})
        status = cijobs.wait_phase(jobs, "long", timeout=TIMEOUT)["status"]
        assert status["phase"] == "Canceled", status

        assert release.refused() == [], release.explain()
        assert liveness_failures(kube, release) == []
    finally:
        release.pods()
        kube.run("helm", "uninstall", release.name, "-n", home, "--wait")
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))

    # What helm uninstall leaves (docs/install.md, "Uninstalling"): the CRD and every CiJob,
    # and the Lease the operator made; nothing of the chart's own.
    wait_for(
        "the operator pods to be gone",
        lambda: (
            not kube.kubectl(
                "get",
                "pods",
                "-n",
                home,
                "-o",
                "name",
                "-l",
                f"app.kubernetes.io/instance={release.name}",
            ).strip()
        ),
        timeout=TIMEOUT,
    )
    assert _names(kube, home) - before == {f"lease.coordination.k8s.io/{release.name}"}
    assert _cluster_names(kube, release.name) == set()
    kube.kubectl("get", "crd", "cijobs.cijob.dev")
    assert cijobs.get(jobs, "long") is not None and cijobs.get(jobs, "after-handover") is not None
