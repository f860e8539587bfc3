"""spec.source as the API server checks it at `kubectl apply`: URL forms, commit hex, depth,
submodules, secretRef; each refusal names the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.test_api_validation import apply

pytestmark = pytest.mark.cluster

SHA = "4f2c" + "0" * 36


def source(git: str) -> str:
    return f"  image: ruby\n  script: [rake]\n  source:\n    git: {git}"


GOOD = {
    "https": "{url: 'https://git.example.com/group/project.git'}",
    "http-port": "{url: 'http://10.250.0.9:8080/git/p.git', ref: main, depth: 0}",
    "ssh": "{url: 'ssh://git@git.example.com:2222/g/p.git', secretRef: {name: key}}",
    "git": "{url: 'git://git.example.com/p.git', submodules: recursive}",
    "scp": f"{{url: 'git@github.com:group/project.git', commit: {SHA}, ref: v1.2.3}}",
    "sha256": f"{{url: 'https://h.example/p.git', commit: {'ab' * 32}}}",
}

BAD = {
    "password-in-url": (
        "{url: 'https://user:s3cret@git.example.com/p.git'}",
        "spec.source.git.url: Invalid value",
    ),
    "file-url": ("{url: 'file:///etc'}", "spec.source.git.url"),
    "option-url": ("{url: '-oProxyCommand=x:y'}", "spec.source.git.url"),
    "short-commit": ("{url: 'https://h.example/p.git', commit: 4f2c}", "spec.source.git.commit"),
    "upper-commit": (
        f"{{url: 'https://h.example/p.git', commit: {SHA.upper()}}}",
        "spec.source.git.commit",
    ),
    "depth": ("{url: 'https://h.example/p.git', depth: -1}", "spec.source.git.depth"),
    "submodules": (
        "{url: 'https://h.example/p.git', submodules: all}",
        "spec.source.git.submodules",
    ),
    "ref-option": (
        "{url: 'https://h.example/p.git', ref: '--upload-pack=x'}",
        "spec.source.git.ref",
    ),
    "ref-dots": ("{url: 'https://h.example/p.git', ref: 'a..b'}", "spec.source.git.ref"),
    "secret-ref": ("{url: 'https://h.example/p.git', secretRef: {}}", "spec.source.git.secretRef"),
    "no-url": ("{ref: main}", "spec.source.git.url: Required value"),
}


@pytest.mark.parametrize("git", GOOD.values(), ids=GOOD.keys())
def test_kubectl_apply_accepts_the_source_forms(
    kubeconfig: Path, namespace: str, crds: list[str], git: str
) -> None:
    result = apply(kubeconfig, namespace, "ok", source(git))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("git", "message"), BAD.values(), ids=BAD.keys())
def test_kubectl_apply_refuses_bad_source_naming_the_field(
    kubeconfig: Path, namespace: str, crds: list[str], git: str, message: str
) -> None:
    result = apply(kubeconfig, namespace, "bad", source(git))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
