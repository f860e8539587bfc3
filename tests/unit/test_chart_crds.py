"""The chart ships the generated CRD and admission policy unchanged (`cijob crd` writes crds/)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from cijob.api.crd import manifests

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "cijob-operator"
HELM = REPO / ".cluster" / "bin" / "helm"
CRD_FILE = "cijob.dev_cijobs.yaml"
POLICY_FILE = "cijob.dev_validation.yaml"
CREDENTIALS_FILE = "cijob.dev_credentials.yaml"
# Helm installs the chart's crds/ before the templates (and never upgrades them); the policy is
# no CRD, so it is a template (templates/validation.yaml) that reads files/.
CHART_COPIES = {
    CRD_FILE: CHART / "crds" / CRD_FILE,
    POLICY_FILE: CHART / "files" / POLICY_FILE,
    CREDENTIALS_FILE: CHART / "files" / CREDENTIALS_FILE,
}
SYNC_HINT = (
    "the chart's copy differs from crds/: run `make crds` then "
    f"`cp crds/{CRD_FILE} charts/cijob-operator/crds/ && "
    f"cp crds/{POLICY_FILE} crds/{CREDENTIALS_FILE} charts/cijob-operator/files/`"
)


def _helm_template(*args: str) -> str:
    assert HELM.exists(), f"{HELM} is missing: build the test ground first (`make testground`)"
    proc = subprocess.run(
        [str(HELM), "template", "crds", str(CHART), "--kube-version", "1.34.4", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_repository_crds_are_what_the_generator_writes() -> None:
    generated = manifests()
    assert sorted(generated) == sorted(CHART_COPIES)
    for name, text in generated.items():
        assert (REPO / "crds" / name).read_text() == text, f"crds/{name} is stale: `make crds`"


def test_chart_copies_are_identical_to_crds_dir() -> None:
    for name, copy in CHART_COPIES.items():
        assert copy.exists(), f"{copy} is missing; {SYNC_HINT}"
        assert copy.read_bytes() == (REPO / "crds" / name).read_bytes(), SYNC_HINT


def test_chart_crds_dir_holds_only_the_crd() -> None:
    # Anything in crds/ is created once and never updated or deleted by Helm: only the CRD
    # belongs there.
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [CRD_FILE]
    docs = [d for d in yaml.safe_load_all((CHART / "crds" / CRD_FILE).read_text()) if d]
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("CustomResourceDefinition", "cijobs.cijob.dev")
    ]


def test_rendered_policy_is_the_generated_file() -> None:
    rendered = _helm_template("--show-only", "templates/validation.yaml")
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    expected = [
        d
        for name in (POLICY_FILE, CREDENTIALS_FILE)
        for d in yaml.safe_load_all((REPO / "crds" / name).read_text())
        if d
    ]
    # Helm orders the documents by kind.
    assert sorted(docs, key=_kind_name) == sorted(expected, key=_kind_name)
    assert sorted(_kind_name(d) for d in docs) == [
        ("ValidatingAdmissionPolicy", "cijobs-credentials.cijob.dev"),
        ("ValidatingAdmissionPolicy", "cijobs.cijob.dev"),
        ("ValidatingAdmissionPolicyBinding", "cijobs-credentials.cijob.dev"),
        ("ValidatingAdmissionPolicyBinding", "cijobs.cijob.dev"),
    ]


def _kind_name(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def test_inline_docker_auth_config_allowed_leaves_out_only_its_policy() -> None:
    rendered = _helm_template(
        "--show-only", "templates/validation.yaml", "--set", "inlineDockerAuthConfig.allowed=true"
    )
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    expected = [d for d in yaml.safe_load_all((REPO / "crds" / POLICY_FILE).read_text()) if d]
    assert docs == expected


def test_policy_can_be_left_out() -> None:
    rendered = _helm_template("--set", "validationPolicy.enabled=false")
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
    assert "ValidatingAdmissionPolicy" not in kinds
    assert "ValidatingAdmissionPolicyBinding" not in kinds


def test_include_crds_renders_the_crd_unchanged() -> None:
    rendered = _helm_template("--include-crds")
    crds = [
        d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "CustomResourceDefinition"
    ]
    assert crds == [yaml.safe_load((REPO / "crds" / CRD_FILE).read_text())]
