"""The Helm chart, rendered with `helm template` (no cluster): RBAC, credentials wiring, the
security context, probes and the operator configuration, for each way of installing it."""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cijob.config import OperatorConfig

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "cijob-operator"
HELM = REPO / ".cluster" / "bin" / "helm"
KUBE_VERSION = "1.34.4"
RELEASE = "ci"
NAMESPACE = "cijob-system"
FULLNAME = f"{RELEASE}-cijob-operator"
VALUES_FILES = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))

Obj = dict[str, Any]
Rules = dict[tuple[str, str], set[str]]

# Exactly what the operator does through the API (docs/install.md, "RBAC").
OPERATOR_RULES: Rules = {
    ("cijob.dev", "cijobs"): {"get", "list", "watch", "patch", "delete"},
    ("cijob.dev", "cijobs/status"): {"get", "patch", "update"},
    ("", "pods"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "secrets"): {"get", "create", "patch"},
    ("", "configmaps"): {"get"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
# Kinds the operator never touches: no rule bound to its account may name them.
FOREIGN = {
    ("", "nodes"),
    ("", "namespaces"),
    ("", "serviceaccounts"),
    ("", "services"),
    ("apps", "deployments"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM.exists(), f"{HELM} is missing: build the test ground first (`make testground`)"
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, check=False)


def template_args(values_files: Iterable[str], sets: Iterable[str]) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    args += ["--kube-version", KUBE_VERSION]
    for name in values_files:
        args += ["--values", str(CHART / "ci" / name)]
    for s in sets:
        args += ["--set", s]
    return args


@functools.cache
def _render(values_files: tuple[str, ...], sets: tuple[str, ...]) -> tuple[Obj, ...]:
    proc = helm(*template_args(values_files, sets))
    assert proc.returncode == 0, proc.stderr
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


def render(*values_files: str, sets: Iterable[str] = ()) -> list[Obj]:
    return list(_render(tuple(values_files), tuple(sets)))


def only(objs: list[Obj], kind: str, name: str | None = None, namespace: str | None = None) -> Obj:
    found = [
        o
        for o in objs
        if o["kind"] == kind
        and (name is None or o["metadata"]["name"] == name)
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {namespace or 'any namespace'}"
    return found[0]


def container(objs: list[Obj]) -> Obj:
    pod = only(objs, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["operator"]
    c: Obj = pod["containers"][0]
    return c


def env(objs: list[Obj]) -> dict[str, Obj]:
    return {e["name"]: e for e in container(objs).get("env", [])}


def args(objs: list[Obj], flag: str) -> list[str]:
    return [a.split("=", 1)[1] for a in container(objs)["args"] if a.startswith(f"{flag}=")]


def rules(role: Obj) -> Rules:
    out: Rules = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule or role["kind"] == "Role"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def bound_to_operator(objs: list[Obj]) -> list[tuple[Obj, Obj]]:
    """(binding, role) pairs whose subject is the operator's ServiceAccount."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objs}
    pairs = []
    for b in objs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(
            s == {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
            for s in b["subjects"]
        ):
            continue
        ref = b["roleRef"]
        ns = b["metadata"].get("namespace") if ref["kind"] == "Role" else None
        pairs.append((b, roles[(ref["kind"], ns, ref["name"])]))
    return pairs


def operator_config(objs: list[Obj]) -> tuple[str, OperatorConfig]:
    text: str = only(objs, "ConfigMap", FULLNAME)["data"]["config.yaml"]
    return text, OperatorConfig.model_validate(yaml.safe_load(text))


def values_of(name: str) -> Obj:
    data: Obj = yaml.safe_load((CHART / "ci" / name).read_text())
    return data


# --- lint and metadata ---------------------------------------------------------------------


@pytest.mark.parametrize("values_file", [None, *VALUES_FILES])
def test_helm_lint_strict(values_file: str | None) -> None:
    extra = ["--values", str(CHART / "ci" / values_file)] if values_file else []
    proc = helm("lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_values_files_cover_the_install_modes() -> None:
    assert VALUES_FILES == ["credentials-values.yaml", "ha-values.yaml", "namespaced-values.yaml"]


def test_chart_version_follows_the_operator() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["name"] == project["name"] == "cijob-operator"
    assert chart["appVersion"] == project["version"]
    assert chart["apiVersion"] == "v2"


def test_every_object_is_labelled_and_namespaced() -> None:
    for o in render(*VALUES_FILES):
        if o["apiVersion"].startswith("admissionregistration"):
            continue  # the generated policy files, unchanged
        labels = o["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        cluster_scoped = o["kind"] in ("ClusterRole", "ClusterRoleBinding")
        assert ("namespace" in o["metadata"]) != cluster_scoped, o["kind"]


# --- RBAC ----------------------------------------------------------------------------------


def test_rbac_cluster_wide_by_default() -> None:
    objs = render()
    pairs = bound_to_operator(objs)
    assert sorted((b["kind"], r["kind"], r["metadata"]["name"]) for b, r in pairs) == [
        ("ClusterRoleBinding", "ClusterRole", FULLNAME),
        ("RoleBinding", "Role", f"{FULLNAME}-leader-election"),
    ]
    assert rules(only(objs, "ClusterRole", FULLNAME)) == OPERATOR_RULES
    assert args(objs, "--namespace") == []


def test_rbac_namespaced_has_a_role_per_watched_namespace_and_no_cluster_grant() -> None:
    objs = render("namespaced-values.yaml")
    watched = values_of("namespaced-values.yaml")["watchNamespaces"]
    assert watched == ["team-a", "team-b"]
    pairs = bound_to_operator(objs)
    assert all(b["kind"] == "RoleBinding" for b, _ in pairs)
    assert not [o for o in objs if o["kind"] == "ClusterRoleBinding"]
    for ns in watched:
        role = only(objs, "Role", FULLNAME, ns)
        assert rules(role) == OPERATOR_RULES
        binding = only(objs, "RoleBinding", FULLNAME, ns)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": FULLNAME,
        }
    namespaces = sorted(r["metadata"]["namespace"] for _, r in pairs)
    assert namespaces == sorted([*watched, NAMESPACE])
    assert args(objs, "--namespace") == watched
    # The only ClusterRoles are the aggregated ones for users, bound to nobody here.
    for role in (o for o in objs if o["kind"] == "ClusterRole"):
        assert set(rules(role)) <= {("cijob.dev", "cijobs"), ("cijob.dev", "cijobs/status")}
        assert any(
            k.startswith("rbac.authorization.k8s.io/aggregate-to-")
            for k in role["metadata"]["labels"]
        )


def test_lease_role_is_limited_to_the_operator_lease() -> None:
    objs = render()
    role = only(objs, "Role", f"{FULLNAME}-leader-election", NAMESPACE)
    lease = args(objs, "--lease-name")
    assert lease == [FULLNAME]
    assert args(objs, "--lease-namespace") == [NAMESPACE]
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": lease,
            "verbs": ["get", "update"],
        },
    ]


@pytest.mark.parametrize("values_file", [None, *VALUES_FILES])
def test_operator_account_never_reaches_foreign_kinds(values_file: str | None) -> None:
    objs = render(*([values_file] if values_file else []))
    granted: Rules = {}
    for _, role in bound_to_operator(objs):
        for key, verbs in rules(role).items():
            granted.setdefault(key, set()).update(verbs)
    assert not set(granted) & FOREIGN
    assert not any("*" in g or "*" in r for g, r in granted), "no wildcards"
    assert not any(
        "*" in verbs or "escalate" in verbs or "bind" in verbs for verbs in granted.values()
    )
    assert granted[("", "secrets")] == {"get", "create", "patch"}, "never list, watch or delete"


def test_aggregated_roles_let_namespace_users_run_jobs() -> None:
    objs = render()
    edit = only(objs, "ClusterRole", f"{FULLNAME}-edit")
    view = only(objs, "ClusterRole", f"{FULLNAME}-view")
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert "create" in rules(edit)[("cijob.dev", "cijobs")]
    assert rules(view)[("cijob.dev", "cijobs")] == {"get", "list", "watch"}
    no_aggregation = render(sets=["rbac.aggregateClusterRoles=false"])
    assert [o["metadata"]["name"] for o in no_aggregation if o["kind"] == "ClusterRole"] == [
        FULLNAME
    ]


def test_rbac_create_false_renders_no_rbac() -> None:
    objs = render(sets=["rbac.create=false"])
    assert not [o for o in objs if o["apiVersion"].startswith("rbac.authorization.k8s.io")]


# --- the Deployment ------------------------------------------------------------------------


def test_security_context_is_restricted() -> None:
    objs = render()
    pod = only(objs, "Deployment")["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 10001
    assert psc["runAsGroup"] == 10001
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(objs)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is True
    assert pod["serviceAccountName"] == FULLNAME
    # With a read-only root, every writable path is an emptyDir: /tmp and $HOME.
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {
        m["mountPath"]: volumes[m["name"]]
        for m in container(objs)["volumeMounts"]
        if not m.get("readOnly")
    }
    assert set(writable) == {"/tmp", "/home/cijob"}
    assert all("emptyDir" in v for v in writable.values())
    assert env(objs)["HOME"]["value"] == "/home/cijob"


def test_probes_hit_healthz_on_the_health_port() -> None:
    for sets in ([], ["healthPort=9090"]):
        objs = render(sets=sets)
        c = container(objs)
        port = int(args(objs, "--health-port")[0])
        assert c["ports"] == [{"name": "health", "containerPort": port, "protocol": "TCP"}]
        for probe in ("livenessProbe", "readinessProbe"):
            assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
            assert c[probe]["periodSeconds"] > 0
    c = container(render(sets=["probes.liveness.enabled=false"]))
    assert "livenessProbe" not in c
    assert "readinessProbe" in c


def test_image_tag_defaults_to_app_version_and_digest_pins_it() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert container(render())["image"] == f"cijob-operator:{chart['appVersion']}"
    ha = values_of("ha-values.yaml")["image"]
    image = container(render("ha-values.yaml"))["image"]
    assert image == f"{ha['repository']}:{ha['tag']}@{ha['digest']}"


def test_args_and_log_level() -> None:
    objs = render("namespaced-values.yaml")
    assert args(objs, "--config") == ["/etc/cijob/config.yaml"]
    assert args(objs, "--log-level") == ["debug"]
    mounts = {m["mountPath"]: m for m in container(objs)["volumeMounts"]}
    assert mounts["/etc/cijob"]["readOnly"] is True
    pod = only(objs, "Deployment")["spec"]["template"]["spec"]
    config_volume = next(v for v in pod["volumes"] if v["name"] == mounts["/etc/cijob"]["name"])
    assert config_volume["configMap"]["name"] == FULLNAME


def test_two_replicas_are_a_leader_and_a_hot_standby() -> None:
    objs = render("ha-values.yaml")
    deployment = only(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert "--leader-elect" in container(objs)["args"]
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    affinity = deployment["spec"]["template"]["spec"]["affinity"]
    assert "podAntiAffinity" in affinity


def test_without_leader_election_one_replica_and_recreate() -> None:
    objs = render(sets=["leaderElection.enabled=false"])
    assert "--leader-elect" not in container(objs)["args"]
    assert args(objs, "--lease-name") == []
    assert only(objs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert not [o for o in objs if o["metadata"]["name"].endswith("-leader-election")]
    proc = helm(*template_args([], ["leaderElection.enabled=false", "replicaCount=2"]))
    assert proc.returncode != 0
    assert "leaderElection.enabled" in proc.stderr


# --- registry credentials ------------------------------------------------------------------


def test_no_credentials_by_default() -> None:
    objs = render()
    assert "DOCKER_AUTH_CONFIG" not in env(objs)
    assert not [m for m in container(objs)["volumeMounts"] if ".docker" in m["mountPath"]]


def test_credentials_secrets_wiring() -> None:
    objs = render("credentials-values.yaml")
    values = values_of("credentials-values.yaml")
    auth = values["dockerAuthConfig"]
    assert env(objs)["DOCKER_AUTH_CONFIG"] == {
        "name": "DOCKER_AUTH_CONFIG",
        "valueFrom": {"secretKeyRef": {"name": auth["existingSecret"], "key": auth["key"]}},
    }
    home = env(objs)["HOME"]["value"]
    mount = next(m for m in container(objs)["volumeMounts"] if m["mountPath"] == f"{home}/.docker")
    assert mount["readOnly"] is True
    pod = only(objs, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    cfg = values["dockerConfigJson"]
    assert volume["secret"]["secretName"] == cfg["existingSecret"]
    assert volume["secret"]["items"] == [{"key": cfg["key"], "path": "config.json"}]
    assert volume["secret"]["defaultMode"] == 0o440
    # Readable by the operator through the pod's fsGroup.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    # extraEnv is appended; the ServiceAccount carries the IRSA annotation.
    assert env(objs)["AWS_REGION"]["value"] == "eu-west-1"
    sa = only(objs, "ServiceAccount", FULLNAME)
    assert sa["metadata"]["annotations"] == values["serviceAccount"]["annotations"]


def test_default_secret_keys() -> None:
    objs = render(
        sets=["dockerAuthConfig.existingSecret=auth", "dockerConfigJson.existingSecret=file"]
    )
    assert env(objs)["DOCKER_AUTH_CONFIG"]["valueFrom"]["secretKeyRef"] == {
        "name": "auth",
        "key": "DOCKER_AUTH_CONFIG",
    }
    pod = only(objs, "Deployment")["spec"]["template"]["spec"]
    secret = next(v["secret"] for v in pod["volumes"] if "secret" in v)
    assert secret["items"] == [{"key": "config.json", "path": "config.json"}]


def test_existing_service_account() -> None:
    objs = render(sets=["serviceAccount.create=false", "serviceAccount.name=ci-operator"])
    assert not [o for o in objs if o["kind"] == "ServiceAccount"]
    pod = only(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ci-operator"
    binding = only(objs, "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == "ci-operator"
    proc = helm(*template_args([], ["serviceAccount.create=false"]))
    assert proc.returncode != 0
    assert "serviceAccount.name" in proc.stderr


# --- the operator configuration ------------------------------------------------------------


def test_default_config_is_the_models_default() -> None:
    _, config = operator_config(render())
    assert config == OperatorConfig()


def test_namespaced_config_carries_every_setting() -> None:
    objs = render("namespaced-values.yaml")
    values = values_of("namespaced-values.yaml")
    _, config = operator_config(objs)
    assert config.namespaces == values["watchNamespaces"] == args(objs, "--namespace")
    assert config.defaults.image == "ruby:2.6"
    assert config.defaults.timeout == "30m"
    assert (
        config.defaults.model_dump(mode="json", exclude_none=True)["services"]
        == values["defaults"]["services"]
    )
    assert config.allowedPullPolicies == ["IfNotPresent", "Never"]
    assert config.requireDigest is True
    assert config.imagePullGraceSeconds == 120


def test_every_config_value_reaches_the_model() -> None:
    sets = [
        "afterScriptTimeoutSeconds=120",
        "events=false",
        "workers=8",
        "defaults.image=registry.example.com/ci/ruby:3.3",
    ]
    # A fraction of a second needs --set-json (or a values file): --set makes it a string.
    proc = helm(*template_args([], sets), "--set-json", "credentialHelperTimeoutSeconds=2.5")
    assert proc.returncode == 0, proc.stderr
    _, config = operator_config([d for d in yaml.safe_load_all(proc.stdout) if d])
    assert config.afterScriptTimeoutSeconds == 120
    assert config.credentialHelperTimeoutSeconds == 2.5
    assert config.events is False
    assert config.workers == 8
    assert config.defaults.image == "registry.example.com/ci/ruby:3.3"


def test_config_change_restarts_the_pod() -> None:
    def checksum(objs: list[Obj]) -> str:
        annotations = only(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        value: str = annotations["checksum/config"]
        return value

    text, _ = operator_config(render())
    assert checksum(render()) == hashlib.sha256(text.rstrip("\n").encode()).hexdigest()
    assert checksum(render(sets=["requireDigest=true"])) != checksum(render())
    # Settings that are not configuration do not restart it.
    assert checksum(render(sets=["logLevel=debug"])) == checksum(render())


# --- values.schema.json --------------------------------------------------------------------

BAD_VALUES = [
    ("--set-string", "replicaCount=two", "/replicaCount"),
    ("--set", "logLevel=verbose", "/logLevel"),
    ("--set", "allowedPullPolicies={always}", "/allowedPullPolicies/0"),
    ("--set", "defaults.timeout=soon", "/defaults/timeout"),
    ("--set-json", 'defaults.services=[{"alias": "db"}]', "/defaults/services/0"),
    ("--set", "watchNamespaces={Team_A}", "/watchNamespaces/0"),
    ("--set", "image.digest=sha256:abc", "/image/digest"),
    ("--set", "image.pullPolicy=sometimes", "/image/pullPolicy"),
    ("--set-string", "requireDigest=yes", "/requireDigest"),
    ("--set", "imagePullGraceSeconds=-1", "/imagePullGraceSeconds"),
    ("--set-json", "dockerAuthConfig.existingSecret=42", "/dockerAuthConfig/existingSecret"),
    ("--set", "dockerConfigJson.key=", "/dockerConfigJson/key"),
    ("--set", "probes.liveness.periodSeconds=0", "/probes/liveness/periodSeconds"),
    ("--set", "watchNamespace={team-a}", "watchNamespace"),
]


@pytest.mark.parametrize(("flag", "value", "where"), BAD_VALUES)
def test_schema_rejects_bad_values(flag: str, value: str, where: str) -> None:
    args = template_args([], [])
    proc = helm(*args, flag, value)
    assert proc.returncode != 0, f"{flag} {value} was accepted"
    assert where in proc.stderr, proc.stderr


def _schema_paths(node: Obj, prefix: str = "") -> dict[str, Obj]:
    out: dict[str, Obj] = {}
    for key, sub in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        out[path] = sub
        out.update(_schema_paths(sub, f"{path}."))
    return out


def _values_paths(node: Any, schema: Obj, prefix: str = "") -> list[str]:
    """Paths of values.yaml down to where the schema stops describing keys (k8s objects)."""
    out = []
    if isinstance(node, dict) and "properties" in schema:
        for key, sub in node.items():
            path = f"{prefix}{key}"
            assert key in schema["properties"], f"values.yaml key {path} is not in the schema"
            out.append(path)
            out += _values_paths(sub, schema["properties"][key], f"{path}.")
    return out


def test_schema_describes_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    paths = _values_paths(values, schema)
    described = _schema_paths(schema)
    assert all(described[p].get("description") for p in described)
    # Every value of values.yaml is in the schema, and every schema key is in values.yaml.
    assert set(described) - {"global"} == set(paths)


def test_every_value_is_commented_in_values_yaml() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    documented = set(_schema_paths(schema))
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []
    missing = []
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#") or stripped.startswith("- "):
            continue
        indent = len(line) - len(stripped)
        key = stripped.split(":", 1)[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([*(k for _, k in stack), key])
        stack.append((indent, key))
        if path not in documented:
            continue  # inside a Kubernetes object (resources, securityContext...)
        previous = next((p.strip() for p in reversed(lines[:i]) if p.strip()), "")
        if not previous.startswith("#"):
            missing.append(path)
    assert missing == [], missing


def test_install_docs_list_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    docs = (REPO / "docs" / "install.md").read_text()
    leaves = [p for p, node in _schema_paths(schema).items() if "properties" not in node]
    missing = [p for p in leaves if p != "global" and f"`{p}`" not in docs]
    assert missing == []


def test_install_docs_show_the_rendered_config() -> None:
    docs = (REPO / "docs" / "install.md").read_text()
    marker = "`ci/namespaced-values.yaml` gives:\n\n```yaml\n"
    example = docs.split(marker, 1)[1].split("```", 1)[0]
    text, _ = operator_config(render("namespaced-values.yaml"))
    assert example == text


def test_chart_refuses_clusters_without_admission_policy_v1() -> None:
    args = template_args([], [])
    args[args.index("--kube-version") + 1] = "1.29.0"
    proc = helm(*args)
    assert proc.returncode != 0
    assert "kubeVersion" in proc.stderr or "incompatible" in proc.stderr, proc.stderr


# --- metrics and queueing (docs/metrics.md, docs/lifecycle.md) ------------------------------


def test_metrics_service_fronts_the_health_port() -> None:
    objs = render()
    service = only(objs, "Service", f"{FULLNAME}-metrics")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "health", "protocol": "TCP"}
    ]
    pod_labels = only(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not [o for o in objs if o["kind"] == "ServiceMonitor"]
    _, config = operator_config(objs)
    assert config.metrics.enabled and not config.metrics.namespaceLabel
    assert config.maxRunningJobsPerNamespace is None


def test_service_monitor_scrapes_the_metrics_service() -> None:
    sets = ["metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom"]
    objs = render(sets=sets)
    monitor = only(objs, "ServiceMonitor")
    service = only(objs, "Service", f"{FULLNAME}-metrics")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    proc = helm(*template_args([], [*sets, "metrics.service.enabled=false"]))
    assert proc.returncode != 0 and "metrics.serviceMonitor.enabled needs" in proc.stderr


def test_metrics_and_namespace_limit_reach_the_model() -> None:
    sets = ["metrics.namespaceLabel=true", "maxRunningJobsPerNamespace=3"]
    _, config = operator_config(render(sets=sets))
    assert config.metrics.namespaceLabel is True
    assert config.maxRunningJobsPerNamespace == 3
    objs = render(sets=["metrics.enabled=false"])
    assert not [o for o in objs if o["kind"] == "Service"]
    assert operator_config(objs)[1].metrics.enabled is False
