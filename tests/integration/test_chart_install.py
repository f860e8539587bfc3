"""The Helm chart installed into the test control plane, and `kubectl auth can-i` proofs that the
operator's ServiceAccount can do exactly what it needs: every verb it uses, nothing else.

The operator pod is never expected to run here: these tests are about what the chart creates in
the API (objects, permissions, admission), not about the operator itself.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from cijob.api.spec import CiJobSpec
from testground.waits import wait_for

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "cijob-operator"

Check = tuple[str, str, str]  # verb, resource, subresource
Granted = dict[tuple[str, str], frozenset[str]]  # (resource, resource name) -> verbs

# What the operator does, one `kubectl auth can-i` each.
NEEDED: list[Check] = [
    ("get", "cijobs.cijob.dev", ""),
    ("list", "cijobs.cijob.dev", ""),
    ("watch", "cijobs.cijob.dev", ""),
    ("patch", "cijobs.cijob.dev", ""),
    ("delete", "cijobs.cijob.dev", ""),
    ("get", "cijobs.cijob.dev", "status"),
    ("patch", "cijobs.cijob.dev", "status"),
    ("update", "cijobs.cijob.dev", "status"),
    ("get", "pods", ""),
    ("list", "pods", ""),
    ("watch", "pods", ""),
    ("create", "pods", ""),
    ("patch", "pods", ""),
    ("delete", "pods", ""),
    ("get", "secrets", ""),
    ("create", "secrets", ""),
    ("patch", "secrets", ""),
    ("get", "configmaps", ""),
    ("create", "events", ""),
    ("patch", "events", ""),
    ("create", "events.events.k8s.io", ""),
    ("patch", "events.events.k8s.io", ""),
]
# Namespaced things the operator never does, in any namespace.
NEVER_NAMESPACED: list[Check] = [
    ("list", "secrets", ""),
    ("watch", "secrets", ""),
    ("update", "secrets", ""),
    ("delete", "secrets", ""),
    ("create", "cijobs.cijob.dev", ""),
    ("update", "cijobs.cijob.dev", ""),
    ("update", "pods", ""),
    ("create", "pods", "exec"),
    ("get", "pods", "log"),
    ("create", "deployments.apps", ""),
    ("list", "deployments.apps", ""),
    ("create", "serviceaccounts", "token"),
    ("create", "rolebindings.rbac.authorization.k8s.io", ""),
    ("create", "roles.rbac.authorization.k8s.io", ""),
    ("list", "configmaps", ""),
    ("update", "configmaps", ""),
    ("delete", "events", ""),
]
# Cluster-scoped kinds: never.
NEVER_CLUSTER: list[Check] = [
    ("list", "nodes", ""),
    ("get", "nodes", ""),
    ("get", "namespaces", ""),
    ("create", "namespaces", ""),
    ("get", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("create", "clusterroles.rbac.authorization.k8s.io", ""),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", ""),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", ""),
    ("create", "validatingadmissionpolicies.admissionregistration.k8s.io", ""),
    ("impersonate", "users", ""),
    ("get", "persistentvolumes", ""),
]
# What every authenticated account may do (the bootstrap policy's basic-user role).
BASIC: Granted = {
    ("selfsubjectreviews.authentication.k8s.io", ""): frozenset({"create"}),
    ("selfsubjectaccessreviews.authorization.k8s.io", ""): frozenset({"create"}),
    ("selfsubjectrulesreviews.authorization.k8s.io", ""): frozenset({"create"}),
}
# The operator's rules in a namespace it watches.
OPERATOR: Granted = {
    ("cijobs.cijob.dev", ""): frozenset({"get", "list", "watch", "patch", "delete"}),
    ("cijobs.cijob.dev/status", ""): frozenset({"get", "patch", "update"}),
    ("pods", ""): frozenset({"get", "list", "watch", "create", "patch", "delete"}),
    ("secrets", ""): frozenset({"get", "create", "patch"}),
    ("configmaps", ""): frozenset({"get"}),
    ("events", ""): frozenset({"create", "patch"}),
    ("events.events.k8s.io", ""): frozenset({"create", "patch"}),
}
RULE_LINE = re.compile(r"^(\S+)\s+\[\]\s+\[([^\]]*)\]\s+\[([^\]]*)\]$")


def lease_rules(lease: str) -> Granted:
    return {
        ("leases.coordination.k8s.io", ""): frozenset({"create"}),
        ("leases.coordination.k8s.io", lease): frozenset({"get", "update"}),
    }


def release_for(namespace: str) -> str:
    # Containing the chart name makes the release name the full name of every object; unique per
    # test namespace, so cluster-scoped objects (ClusterRoles) of parallel tests never collide.
    return "cijob-operator-" + hashlib.sha256(namespace.encode()).hexdigest()[:8]


class Cluster(Protocol):
    """What the `cluster` fixture (tests/conftest.py) gives."""

    @property
    def kubeconfig(self) -> Path: ...

    @property
    def bin(self) -> Path: ...


@dataclass
class Kube:
    """kubectl and helm against the test cluster, with stdin and without failing the test."""

    cluster: Cluster

    def run(
        self, tool: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        return subprocess.run(
            [str(self.cluster.bin / tool), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=120,
        )

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        proc = self.run("kubectl", *args, stdin=stdin)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def helm(self, *args: str) -> str:
        proc = self.run("helm", *args)
        assert proc.returncode == 0, f"helm {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def can_i(
        self,
        user: str,
        verb: str,
        resource: str,
        subresource: str = "",
        namespace: str | None = None,
        name: str = "",
    ) -> bool:
        args = ["auth", "can-i", verb, f"{resource}/{name}" if name else resource, "--as", user]
        if subresource:
            args.append(f"--subresource={subresource}")
        args += ["--namespace", namespace] if namespace else ["--all-namespaces"]
        proc = self.run("kubectl", *args)
        answer = proc.stdout.strip()
        assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {proc.stdout} {proc.stderr}"
        return answer == "yes"

    def wrong_answers(
        self, user: str, checks: list[Check], where: list[str | None], expected: bool
    ) -> list[str]:
        """The checks whose answer, in each of `where` (None: all namespaces), is not
        `expected`; asked in parallel, as each `kubectl auth can-i` is a process of its own."""
        cases = [(c, ns) for ns in where for c in checks]

        def ask(case: tuple[Check, str | None]) -> bool:
            (verb, resource, sub), ns = case
            return self.can_i(user, verb, resource, sub, ns)

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(ask, cases))
        return [
            f"{verb} {resource}{'/' + sub if sub else ''} in {ns or 'all namespaces'}: "
            f"{'yes' if answer else 'no'}"
            for ((verb, resource, sub), ns), answer in zip(cases, answers, strict=True)
            if answer != expected
        ]

    def granted(self, user: str, namespace: str) -> Granted:
        """Everything `user` may do to resources in `namespace` (`kubectl auth can-i --list`)."""
        out = self.kubectl("auth", "can-i", "--list", "--as", user, "-n", namespace)
        rules: dict[tuple[str, str], set[str]] = {}
        for line in out.splitlines()[1:]:
            m = RULE_LINE.match(line.strip())
            if m:  # resource rules; non-resource URLs (/healthz, /version...) are everyone's
                rules.setdefault((m[1], m[2]), set()).update(m[3].split())
        return {k: frozenset(v) for k, v in rules.items()}


@dataclass
class Install:
    """One `helm install` of the chart into the test namespace."""

    kube: Kube
    namespace: str
    release: str
    notes: str = ""
    installed: bool = field(default=False)

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.release}"

    def install(self, *sets: str) -> None:
        # The admission policy is cluster-scoped and already applied from crds/ by the `crds`
        # fixture (tests/unit/test_chart_crds.py and the server dry run below cover the chart's
        # copy). The chart's crds/ is skipped by Helm as the CRD exists.
        args = ["install", self.release, str(CHART), "--namespace", self.namespace]
        args += ["--set", "validationPolicy.enabled=false"]
        for s in sets:
            args += ["--set", s]
        self.notes = self.kube.helm(*args)
        self.installed = True

    def upgrade(self, *sets: str) -> None:
        args = ["upgrade", self.release, str(CHART), "--namespace", self.namespace]
        args.append("--reuse-values")
        for s in sets:
            args += ["--set", s]
        self.kube.helm(*args)

    def objects(self) -> dict[str, list[dict[str, Any]]]:
        manifest = self.kube.helm("get", "manifest", self.release, "--namespace", self.namespace)
        out: dict[str, list[dict[str, Any]]] = {}
        for doc in yaml.safe_load_all(manifest):
            if doc:
                out.setdefault(doc["kind"], []).append(doc)
        return out

    def operator_config(self) -> dict[str, Any]:
        cm = self.kube.kubectl("get", "configmap", self.release, "-n", self.namespace, "-o", "yaml")
        config: dict[str, Any] = yaml.safe_load(yaml.safe_load(cm)["data"]["config.yaml"])
        return config


@pytest.fixture
def kube(cluster: Cluster) -> Kube:
    return Kube(cluster)


@pytest.fixture
def install(kube: Kube, namespace: str, crds: list[str]) -> Iterator[Install]:
    """An install in the test namespace, uninstalled afterwards (its ClusterRoles would outlive
    the namespace)."""
    assert "cijobs.cijob.dev" in crds
    inst = Install(kube, namespace, release_for(namespace))
    try:
        yield inst
    finally:
        if inst.installed:
            kube.run("helm", "uninstall", inst.release, "--namespace", namespace)


@pytest.fixture
def extra_namespaces(kube: Kube, namespace: str) -> Iterator[list[str]]:
    """Two more namespaces, for a namespaced install to watch."""
    names = [f"{namespace[:55]}-w{i}" for i in (1, 2)]
    for name in names:
        kube.kubectl("create", "namespace", name)
    try:
        yield names
    finally:
        for name in names:
            kube.run("kubectl", "delete", "namespace", name, "--wait=false")


def lease_only_in_release_namespace(kube: Kube, inst: Install) -> None:
    sa, ns, lease = inst.service_account, inst.namespace, inst.release
    kind = "leases.coordination.k8s.io"
    assert kube.can_i(sa, "create", kind, namespace=ns)
    assert kube.can_i(sa, "get", kind, namespace=ns, name=lease)
    assert kube.can_i(sa, "update", kind, namespace=ns, name=lease)
    assert not kube.can_i(sa, "delete", kind, namespace=ns, name=lease)
    assert not kube.can_i(sa, "update", kind, namespace=ns, name="someone-else")
    assert not kube.can_i(sa, "list", kind, namespace=ns)
    assert not kube.can_i(sa, "create", kind, namespace="default")


def test_cluster_wide_install_grants_exactly_what_the_operator_uses(
    kube: Kube, install: Install, namespace: str
) -> None:
    # The operator pod must pass the `restricted` Pod Security Standard: the ReplicaSet could
    # not create it otherwise.
    kube.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    install.install()
    sa = install.service_account
    deployment = yaml.safe_load(
        kube.kubectl("get", "deployment", install.release, "-n", namespace, "-o", "yaml")
    )
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == install.release
    selector = f"app.kubernetes.io/instance={install.release}"
    wait_for(
        "the operator pod to be admitted",
        lambda: kube.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "name"),
        timeout=60,
    )
    # Exactly the operator's rules in any namespace, plus its Lease in its own.
    assert kube.granted(sa, "default") == {**BASIC, **OPERATOR}
    assert kube.granted(sa, namespace) == {**BASIC, **OPERATOR, **lease_rules(install.release)}
    # Each verb it needs, one by one, and across all namespaces (its watches).
    assert kube.wrong_answers(sa, NEEDED, ["default", None], True) == []
    assert kube.wrong_answers(sa, NEVER_NAMESPACED, ["default", None], False) == []
    assert kube.wrong_answers(sa, NEVER_CLUSTER, [None], False) == []
    lease_only_in_release_namespace(kube, install)


def test_namespaced_install_reaches_only_its_namespaces(
    kube: Kube, install: Install, namespace: str, extra_namespaces: list[str]
) -> None:
    install.install(f"watchNamespaces={{{','.join(extra_namespaces)}}}")
    sa = install.service_account
    for watched in extra_namespaces:
        assert kube.granted(sa, watched) == {**BASIC, **OPERATOR}
    assert kube.wrong_answers(sa, NEEDED, [extra_namespaces[0]], True) == []
    assert kube.wrong_answers(sa, NEVER_NAMESPACED, [extra_namespaces[0]], False) == []
    # Outside the watched namespaces (its own included): nothing but its Lease.
    assert kube.granted(sa, namespace) == {**BASIC, **lease_rules(install.release)}
    assert kube.granted(sa, "default") == BASIC
    assert kube.granted(sa, "kube-system") == BASIC
    reads: list[Check] = [("get", "secrets", ""), ("get", "configmaps", ""), ("create", "pods", "")]
    elsewhere: list[str | None] = [namespace, "default", "kube-system", None]
    assert kube.wrong_answers(sa, reads, elsewhere, False) == []
    assert kube.wrong_answers(sa, NEEDED, [None], False) == []
    assert kube.wrong_answers(sa, NEVER_CLUSTER, [None], False) == []
    lease_only_in_release_namespace(kube, install)
    assert install.operator_config()["namespaces"] == extra_namespaces


def test_leader_election_off_needs_no_lease(kube: Kube, install: Install, namespace: str) -> None:
    install.install("leaderElection.enabled=false")
    kind = "leases.coordination.k8s.io"
    assert not kube.can_i(install.service_account, "create", kind, namespace=namespace)
    assert "Role" not in install.objects()


def test_users_with_edit_can_run_jobs_and_viewers_can_watch(
    kube: Kube, install: Install, namespace: str
) -> None:
    install.install()
    kube.kubectl(
        "create", "rolebinding", "dev", "--clusterrole=edit", "--user=dev", "-n", namespace
    )
    kube.kubectl("create", "rolebinding", "qa", "--clusterrole=view", "--user=qa", "-n", namespace)
    cijobs = "cijobs.cijob.dev"
    # The clusterrole-aggregation controller adds the chart's rules to edit and view.
    wait_for("edit to aggregate", lambda: kube.can_i("dev", "create", cijobs, namespace=namespace))
    wait_for("view to aggregate", lambda: kube.can_i("qa", "watch", cijobs, namespace=namespace))
    assert kube.can_i("dev", "delete", cijobs, namespace=namespace)
    assert not kube.can_i("qa", "create", cijobs, namespace=namespace)
    assert not kube.can_i("dev", "create", cijobs, namespace="default")


def test_notes_example_job_is_accepted_by_the_api_server(
    kube: Kube, install: Install, namespace: str
) -> None:
    install.install()
    notes = install.notes.split("NOTES:", 1)[1]
    assert "-n default get cijobs -w" in notes
    heredoc = notes.split("<<'EOF'\n", 1)[1].split("\n  EOF", 1)[0]
    job = yaml.safe_load(textwrap.dedent(heredoc))
    assert job["kind"] == "CiJob"
    spec = CiJobSpec.model_validate(job["spec"])
    assert spec.image == "ruby:2.6"
    assert spec.services == ["postgres:11.7"]
    # The CRD's schema and the admission policy accept it.
    out = kube.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(job)
    )
    assert "created (server dry run)" in out


def test_crd_upgrade_then_helm_upgrade(kube: Kube, install: Install, namespace: str) -> None:
    """The documented upgrade: the CRD by server-side apply (Helm never upgrades crds/), then
    `helm upgrade`; a configuration change rolls the operator pod."""
    install.install()
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    jsonpath = "jsonpath={.spec.template.metadata.annotations.checksum/config}"
    deployment = ["get", "deployment", install.release, "-n", namespace, "-o", jsonpath]
    before = kube.kubectl(*deployment)
    install.upgrade("requireDigest=true")
    after = kube.kubectl(*deployment)
    assert before and after and before != after
    assert install.operator_config()["requireDigest"] is True


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced", "credentials-ha"])
def test_every_rendered_object_passes_server_validation(
    kube: Kube, namespace: str, crds: list[str], mode: str
) -> None:
    """`helm template` output, the admission policy included, applied with a server-side dry
    run: the API server validates every object (strict field validation) and keeps none."""
    args = ["template", release_for(namespace), str(CHART), "--namespace", namespace]
    if mode == "namespaced":
        args += ["--set", f"watchNamespaces={{{namespace},default}}"]
    if mode == "credentials-ha":
        for name in ("credentials-values.yaml", "ha-values.yaml"):
            args += ["--values", str(CHART / "ci" / name)]
    rendered = kube.helm(*args)
    out = kube.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=rendered)
    kinds = {line.split("/", 1)[0] for line in out.splitlines()}
    assert "deployment.apps" in kinds
    assert "validatingadmissionpolicy.admissionregistration.k8s.io" in kinds
    expected_roles = 3 if mode == "namespaced" else 1  # per watched namespace, and the Lease's
    assert sum(line.startswith("role.rbac") for line in out.splitlines()) == expected_roles
