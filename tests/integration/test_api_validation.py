"""What the API server itself checks when a CiJob is applied (CRD schema, CEL, admission policy)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from integration.support import ROOT

pytestmark = pytest.mark.cluster

KUBECTL = str(ROOT / ".cluster" / "bin" / "kubectl")
DIGEST = "sha256:" + "0123456789abcdef" * 4


def _kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def apply(
    kubeconfig: Path, namespace: str, name: str, spec: str
) -> subprocess.CompletedProcess[str]:
    doc = (
        f"apiVersion: cijob.dev/v1alpha1\nkind: CiJob\nmetadata: {{name: {name}}}\nspec:\n{spec}\n"
    )
    return _kubectl(kubeconfig, "apply", "-n", namespace, "-f", "-", stdin=doc)


GOOD = {
    "string-forms": "  image: ruby:2.6\n  services: [postgres:11.7]\n  script: [rake]",
    "map-forms": "  image: {name: 'super/sql:experimental', entrypoint: ['']}\n"
    "  services:\n  - {name: 'redis:latest', alias: 'cache, kv', pullPolicy: never}\n"
    "  script: [rake]",
    "registry-port": "  image: registry.example.com:5000/namespace/image:tag\n  script: [x]",
    "secret-key-variable": "  image: ruby\n  variablesFrom:\n"
    "  - {secretKeyRef: {name: reg, key: auth.json}, variable: DOCKER_AUTH_CONFIG}\n"
    "  - {secretRef: {name: env}, prefix: X_}\n  script: [x]",
    "tag-and-digest": f"  image: 'ruby:2.6.8@{DIGEST}'\n  script: [x]",
    "shell-entrypoint": "  image: {name: 'super/sql:experimental', entrypoint: ['/bin/sh', '-c']}\n"
    "  script: [x]",
}


@pytest.mark.parametrize("spec", GOOD.values(), ids=GOOD.keys())
def test_kubectl_apply_accepts_both_forms(
    kubeconfig: Path, namespace: str, crds: list[str], spec: str
) -> None:
    result = apply(kubeconfig, namespace, "ok", spec)
    assert result.returncode == 0, result.stderr


BAD = {
    "no-script": ("  image: ruby", "spec.script: Required value"),
    "empty-script": ("  image: ruby\n  script: []", "spec.script"),
    "uppercase": ("  image: Ruby:2.6\n  script: [x]", "spec.image: Ruby:2.6 is not a valid image"),
    "bad-digest": ("  image: 'ruby@sha256:abc'\n  script: [x]", "spec.image"),
    "long-digest": (f"  image: 'ruby@{DIGEST}ab'\n  script: [x]", "spec.image"),
    "pull-policy": (
        "  image: {name: ruby, pullPolicy: sometimes}\n  script: [x]",
        "spec.image: entrypoint must be a list of strings and pullPolicy",
    ),
    "map-without-name": (
        "  image: {entrypoint: ['']}\n  script: [x]",
        "spec.image must be an image reference string or a map",
    ),
    "service-alias": (
        "  image: ruby\n  services: [{name: pg, alias: Bad_Alias}]\n  script: [x]",
        "spec.services: pg has an alias that is not DNS-1123",
    ),
    "service-ref": (
        "  image: ruby\n  services: ['pg:']\n  script: [x]",
        "spec.services: pg: is not a valid image reference",
    ),
    "service-unknown-key": (
        "  image: ruby\n  services: [{name: pg, port: 5432}]\n  script: [x]",
        "spec.services: each entry must be",
    ),
    "retry-max": ("  image: ruby\n  retry: {max: 3}\n  script: [x]", "spec.retry.max"),
    "retry-when": (
        "  image: ruby\n  retry: {when: [Sometimes]}\n  script: [x]",
        "spec.retry.when[0]",
    ),
    "timeout": (
        "  image: ruby\n  timeout: soon\n  script: [x]",
        'spec.timeout: Invalid value: "string": must be a duration',
    ),
    "project": ("  image: ruby\n  project: ../etc\n  script: [x]", "spec.project"),
    "variables-from": (
        "  image: ruby\n  variablesFrom: [{prefix: X_}]\n  script: [x]",
        "exactly one of secretRef or configMapRef or secretKeyRef",
    ),
    "variables-from-key-without-variable": (
        "  image: ruby\n  variablesFrom: [{secretKeyRef: {name: s, key: k}}]\n  script: [x]",
        "variable must be set with secretKeyRef, and only with it",
    ),
    "variables-from-variable-without-key": (
        "  image: ruby\n  variablesFrom: [{secretRef: {name: s}, variable: V}]\n  script: [x]",
        "variable must be set with secretKeyRef, and only with it",
    ),
    "variables-from-key-with-prefix": (
        "  image: ruby\n  variablesFrom: [{secretKeyRef: {name: s, key: k}, variable: V, "
        "prefix: X_}]\n  script: [x]",
        "prefix is for secretRef and configMapRef, not secretKeyRef",
    ),
}


@pytest.mark.parametrize(("spec", "message"), BAD.values(), ids=BAD.keys())
def test_kubectl_apply_rejects_bad_input_naming_the_field(
    kubeconfig: Path, namespace: str, crds: list[str], spec: str, message: str
) -> None:
    result = apply(kubeconfig, namespace, "bad", spec)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_long_names_are_refused(kubeconfig: Path, namespace: str, crds: list[str]) -> None:
    result = apply(kubeconfig, namespace, "a" * 61, "  image: ruby\n  script: [x]")
    assert "metadata.name must be at most 60 characters" in result.stderr


def test_kubectl_explain_and_columns(kubeconfig: Path, namespace: str, crds: list[str]) -> None:
    explain = _kubectl(kubeconfig, "explain", "cijob.spec.services")
    assert explain.returncode == 0 and "native sidecars" in explain.stdout
    for field in ("image", "script", "retry.max", "variablesFrom.secretRef"):
        out = _kubectl(kubeconfig, "explain", f"cijob.spec.{field}")
        assert "DESCRIPTION" in out.stdout and out.stdout.split("DESCRIPTION:")[1].strip()
    assert apply(kubeconfig, namespace, "shown", GOOD["string-forms"]).returncode == 0
    table = _kubectl(kubeconfig, "get", "cij", "-n", namespace)
    assert table.stdout.split()[:7] == ["NAME", "PHASE", "REASON", "EXIT", "IMAGE", "COMMIT", "AGE"]
