"""The chart's podTemplate, credentialScope and inlineDockerAuthConfig values (docs/pod-policy.md):
what they render, what the schema refuses, and the one permission credentialScope adds."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from cijob.config import OperatorConfig
from unit.test_chart_templates import (
    CHART,
    FULLNAME,
    KUBE_VERSION,
    helm,
    only,
    operator_config,
    render,
    template_args,
)

RESTRICTED = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
    "buildContainerSecurityContext": {"allowPrivilegeEscalation": False},
    "priorityClassName": "ci-low",
    "automountServiceAccountToken": False,
    "overwriteAllowed": [],
}
SELECTOR = {"matchLabels": {"cijob.dev/operator-credentials": "true"}, "matchExpressions": []}


def test_defaults_give_the_operators_defaults() -> None:
    text, parsed = operator_config(render())
    config = yaml.safe_load(text)
    assert config["podTemplate"] == {"overwriteAllowed": ["labels", "annotations"]}
    assert "credentialScope" not in config
    assert parsed.podTemplate == OperatorConfig().podTemplate


def test_pod_template_and_scope_reach_the_config_typed() -> None:
    sets = [
        f"podTemplate={json.dumps(RESTRICTED)}",
        f"credentialScope.operatorCredentials={json.dumps(SELECTOR)}",
    ]
    objs = _render_json(sets)
    text, parsed = operator_config(objs)
    config = yaml.safe_load(text)
    assert config["podTemplate"] == RESTRICTED
    assert config["credentialScope"] == {"operatorCredentials": SELECTOR}
    assert parsed.podTemplate.overwriteAllowed == []
    assert parsed.credentialScope.operatorCredentials.matchLabels == SELECTOR["matchLabels"]


def _render_json(sets: list[str]) -> list[dict[str, Any]]:
    args = template_args([], [])
    for s in sets:
        args += ["--set-json", s]
    proc = helm(*args)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def test_no_namespace_permission_without_a_credential_scope() -> None:
    names = [o["metadata"]["name"] for o in render() if o["kind"] == "ClusterRole"]
    assert f"{FULLNAME}-namespaces" not in names


@pytest.mark.parametrize("watch", [[], ["team-a", "team-b"]])
def test_a_credential_scope_lets_the_operator_read_namespaces_and_no_more(watch: list[str]) -> None:
    sets = [f"credentialScope.jobCredentialHelpers={json.dumps(SELECTOR)}"]
    if watch:
        sets.append(f"watchNamespaces={json.dumps(watch)}")
    objs = _render_json(sets)
    role = only(objs, "ClusterRole", f"{FULLNAME}-namespaces")
    expected: dict[str, object] = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}
    if watch:
        expected["resourceNames"] = watch
    assert role["rules"] == [expected]
    binding = only(objs, "ClusterRoleBinding", f"{FULLNAME}-namespaces")
    assert binding["roleRef"]["name"] == f"{FULLNAME}-namespaces"
    assert binding["subjects"][0]["name"] == FULLNAME


BAD = [
    (
        "--set-json",
        'podTemplate.overwriteAllowed=["hostNetwork"]',
        "/podTemplate/overwriteAllowed/0",
    ),
    (
        "--set-json",
        'podTemplate.automountServiceAccountToken="yes"',
        "/podTemplate/automountServiceAccountToken",
    ),
    ("--set-json", 'podTemplate.labels={"a": 1}', "/podTemplate/labels/a"),
    ("--set-json", "podTemplate.hostNetwork=true", "podTemplate"),
    ("--set-string", "inlineDockerAuthConfig.allowed=yes", "/inlineDockerAuthConfig/allowed"),
    (
        "--set-json",
        'credentialScope.operatorCredentials.matchExpressions=[{"key": "a", "operator": "Maybe"}]',
        "/credentialScope/operatorCredentials/matchExpressions/0/operator",
    ),
]


@pytest.mark.parametrize(("flag", "value", "where"), BAD)
def test_schema_refuses_bad_policy_values(flag: str, value: str, where: str) -> None:
    proc = helm(*template_args([], []), flag, value)
    assert proc.returncode != 0, f"{flag} {value} was accepted"
    assert where in proc.stderr, proc.stderr


def test_lint_with_every_policy_value_set() -> None:
    proc = helm(
        "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION,
        "--set-json", f"podTemplate={json.dumps(RESTRICTED)}",
        "--set-json", f"credentialScope.operatorCredentials={json.dumps(SELECTOR)}",
        "--set-json", f"credentialScope.jobCredentialHelpers={json.dumps(SELECTOR)}",
        "--set", "inlineDockerAuthConfig.allowed=true",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
