"""The operator image's cache key: every file of the build context, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from testground import operatorimage


def test_context_is_what_dockerignore_lets_through() -> None:
    files = {str(p) for p in operatorimage.context_files()}
    assert {"pyproject.toml", "README.md", "requirements.lock"} <= files
    assert "operator/cijob/main.py" in files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert not any(f.startswith(("tests/", "charts/", ".cluster/")) for f in files)


def test_ignored_matches_dockerignore_exclusions() -> None:
    assert operatorimage._ignored(Path("operator/cijob/__pycache__/main.cpython-311.pyc"))
    assert operatorimage._ignored(Path("operator/cijob_operator.egg-info/PKG-INFO"))
    assert not operatorimage._ignored(Path("operator/cijob/main.py"))


def test_key_follows_the_context_and_the_build_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / "operator" / "cijob").mkdir(parents=True)
    (repo / "Dockerfile").write_text("FROM scratch\n")
    (repo / ".dockerignore").write_text("*\n!pyproject.toml\n!operator/\n")
    (repo / "pyproject.toml").write_text("[project]\n")
    module = repo / "operator" / "cijob" / "main.py"
    module.write_text("print(1)\n")
    monkeypatch.setattr(operatorimage, "REPO", repo)
    monkeypatch.setattr(operatorimage, "DOCKERFILE", repo / "Dockerfile")
    monkeypatch.setattr(operatorimage, "DOCKERIGNORE", repo / ".dockerignore")
    first = operatorimage.image_key()
    assert operatorimage.image_key() == first
    (repo / "operator" / "cijob" / "__pycache__").mkdir()
    (repo / "operator" / "cijob" / "__pycache__" / "main.pyc").write_bytes(b"x")
    (repo / "notes.txt").write_text("outside the context\n")
    assert operatorimage.image_key() == first
    assert operatorimage.image_key({"CREDENTIAL_HELPERS": "ecr-login"}) != first
    module.write_text("print(2)\n")
    assert operatorimage.image_key() != first


def test_prune_keeps_the_most_recently_used(tmp_path: Path) -> None:
    import os

    for i in range(6):
        layout = tmp_path / f"cijob-operator-{i}"
        layout.mkdir()
        (layout / "index.json").write_text("{}")
        (tmp_path / f"cijob-operator-{i}.log").write_text("log")
        os.utime(layout, (1000 + i, 1000 + i))
    (tmp_path / "cijob-operator-build-x").mkdir()  # a build under way: no index.json
    operatorimage._prune(tmp_path, "cijob-operator-", keep=2)
    assert {p.name for p in tmp_path.iterdir()} == {
        "cijob-operator-4",
        "cijob-operator-5",
        "cijob-operator-4.log",
        "cijob-operator-5.log",
        "cijob-operator-build-x",
    }
