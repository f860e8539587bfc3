"""The operator image's Dockerfile, checked without building it (no Docker engine here): what it
copies exists and passes .dockerignore, it runs a declared console script as a non-root user on
a pinned Python that pyproject.toml accepts, with the locked dependencies."""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
CHART = REPO / "charts" / "cijob-operator"


@dataclass(frozen=True)
class Instruction:
    op: str
    value: str
    stage: int  # index of the FROM it belongs to; -1 before the first


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued RUN
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        op, _, value = full.partition(" ")
        op = op.upper()
        if op == "FROM":
            stage += 1
        out.append(Instruction(op, value.strip(), stage))
    assert not pending, "the Dockerfile ends in a continuation line"
    return out


def global_args() -> dict[str, str]:
    out = {}
    for i in instructions():
        if i.op == "ARG" and i.stage == -1:
            name, _, default = i.value.partition("=")
            out[name] = default
    return out


def expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m[1] or m[2]], text)


def stage_names() -> dict[str, int]:
    """`FROM ... AS <name>`: each named stage's index."""
    out = {}
    for i in instructions():
        words = i.value.split()
        if i.op == "FROM" and len(words) >= 3 and words[-2].upper() == "AS":
            out[words[-1]] = i.stage
    return out


def final_stage() -> list[Instruction]:
    """What makes the final image: the last stage, after the stages it is `FROM`."""
    ins = instructions()
    names = stage_names()
    chain = [max(i.stage for i in ins)]
    while True:
        base = next(i for i in ins if i.op == "FROM" and i.stage == chain[0]).value.split()[0]
        if base not in names:
            break
        chain.insert(0, names[base])
    return [i for stage in chain for i in ins if i.stage == stage]


def pyproject() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
    return data


def base_images() -> list[str]:
    args = global_args()
    images = []
    for i in instructions():
        if i.op == "FROM":
            words = [w for w in i.value.split() if not w.startswith("--")]
            if words[0] not in stage_names():  # an earlier stage is no base image
                images.append(expand(words[0], args))
    return images


def test_base_image_is_slim_python_pinned_to_a_patch_release() -> None:
    images = set(base_images())
    assert len(images) == 1, f"every stage builds on one base: {images}"
    image = images.pop()
    m = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-(\w+)(@sha256:[0-9a-f]{64})?", image)
    assert m, f"{image} is not python:<major>.<minor>.<patch>-slim-<debian release>"
    assert m[4] in ("bookworm", "trixie")


def test_python_version_satisfies_requires_python() -> None:
    image = base_images()[0]
    version = Version(image.split(":")[1].split("-")[0])
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    assert version in requires
    # The same minor version as mypy and ruff target.
    assert f"py{version.major}{version.minor}" == pyproject()["tool"]["ruff"]["target-version"]


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    patterns = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        patterns.append((negate, re.compile(regex + "(/.*)?")))
    return patterns


def ignored(path: str) -> bool:
    """Docker's rule: the last pattern that matches the path (or a parent of it) decides."""
    verdict = False
    for negate, pattern in _dockerignore():
        if pattern.fullmatch(path):
            verdict = not negate
    return verdict


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    copies = [i for i in instructions() if i.op in ("COPY", "ADD")]
    assert copies
    local = 0
    for i in copies:
        words = shlex.split(i.value)
        if any(w.startswith("--from=") for w in words):
            continue
        sources = [w for w in words if not w.startswith("--")][:-1]
        for source in sources:
            path = REPO / source
            assert path.exists(), f"COPY {source}: no such file in the repository"
            local += 1
            files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
            assert files, f"COPY {source} copies no Python file"
            for f in files:
                rel = f.relative_to(REPO).as_posix()
                assert not ignored(rel), f"{rel} is excluded by .dockerignore"
    assert local >= 3  # pyproject.toml, README.md, requirements.lock, operator/


def test_build_context_leaves_out_the_heavy_and_the_secret() -> None:
    for path in (".venv/bin/python", ".cluster/pki/ca.key", ".git/config", "tests/conftest.py"):
        assert ignored(path), f"{path} would be sent to the builder"
    assert ignored("operator/cijob/__pycache__/config.cpython-311.pyc")


def test_entrypoint_is_the_operator_console_script() -> None:
    entry = [i for i in final_stage() if i.op == "ENTRYPOINT"]
    assert len(entry) == 1
    argv = yaml.safe_load(entry[0].value)  # the exec (JSON) form
    assert isinstance(argv, list), "ENTRYPOINT must use the exec form"
    scripts = pyproject()["project"]["scripts"]
    assert argv[0] in scripts
    assert argv[0] == "cijob-operator"
    assert scripts["cijob-operator"] == "cijob.main:main"
    assert not [i for i in final_stage() if i.op == "CMD"], "the chart passes the arguments"


def test_runs_as_non_root_uid_10001_like_the_chart() -> None:
    users = [i.value for i in final_stage() if i.op == "USER"]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), "a numeric USER lets the kubelet check runAsNonRoot"
    assert int(uid) != 0
    assert gid.isdigit() and int(gid) != 0
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)
    run = " ".join(i.value for i in final_stage() if i.op == "RUN")
    assert f"--uid {uid}" in run
    assert f"--gid {gid}" in run


def test_home_and_port_agree_with_the_chart() -> None:
    env = " ".join(i.value for i in final_stage() if i.op == "ENV")
    assert "HOME=/home/cijob" in env
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert "value: /home/cijob" in deployment
    expose = [i.value for i in final_stage() if i.op == "EXPOSE"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert expose == [str(values["healthPort"])]


def test_credential_helpers_build_argument() -> None:
    args = {
        i.value.partition("=")[0]: i.value.partition("=")[2] for i in final_stage() if i.op == "ARG"
    }
    assert args.get("CREDENTIAL_HELPERS") == '""', "CREDENTIAL_HELPERS defaults to none"
    run = " ".join(i.value for i in final_stage() if i.op == "RUN")
    # The seed's ECR example: Debian's package provides docker-credential-ecr-login.
    assert re.search(r"ecr-login\)\s*packages=\"\$\{packages\} amazon-ecr-credential-helper\"", run)
    # The build fails when a named helper is unknown or its binary is not on the PATH.
    assert 'command -v "docker-credential-${helper}"' in run
    assert "exit 1" in run
    docs = (REPO / "docs" / "install.md").read_text()
    assert "--build-arg CREDENTIAL_HELPERS=ecr-login" in docs


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (REPO / "requirements.lock").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+!-]+)", line)
        assert m, f"requirements.lock: {line!r} is not name==version"
        name = canonicalize_name(m[1])
        assert name not in pins, f"{name} is locked twice"
        pins[name] = m[2]
    return pins


def test_lock_pins_every_direct_dependency_as_pyproject_does() -> None:
    lock = _lock()
    for dep in pyproject()["project"]["dependencies"]:
        req = Requirement(dep)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{dep} is not pinned exactly"
        name = canonicalize_name(req.name)
        assert lock.get(name) == specs[0].version, f"requirements.lock: {name} != {dep}"
    assert canonicalize_name("cijob-operator") not in lock


def test_image_installs_with_the_lock() -> None:
    run = " ".join(i.value for i in instructions() if i.op == "RUN")
    assert "--constraint requirements.lock" in run
    assert "--only-binary=:all:" in run
    setuptools = global_args().get("SETUPTOOLS_VERSION") or next(
        i.value.partition("=")[2]
        for i in instructions()
        if i.value.startswith("SETUPTOOLS_VERSION=")
    )
    backend = [Requirement(r) for r in pyproject()["build-system"]["requires"]]
    for req in backend:
        if canonicalize_name(req.name) == "setuptools":
            assert Version(setuptools) in req.specifier


def _copies_code(stage: int, names: dict[str, int]) -> bool:
    """Whether a stage copies the operator's code, itself or from a stage that does."""
    for i in instructions():
        if i.stage != stage or i.op not in ("COPY", "ADD"):
            continue
        words = shlex.split(i.value)
        source = next((w.partition("=")[2] for w in words if w.startswith("--from=")), None)
        if source is None and any(w.rstrip("/") == "operator" for w in words[:-1]):
            return True
        if source in names and _copies_code(names[source], names):
            return True
    return False


def test_dependencies_are_layers_a_change_of_the_code_leaves_cached() -> None:
    # The final image builds on stages that hold the locked dependencies and git but not the
    # code: a builder's layer cache (buildah's in the tests) rebuilds only the wheel's steps.
    names = stage_names()
    chain = sorted({i.stage for i in final_stage()})
    assert len(chain) >= 2, "the final stage builds on a stage of the dependencies"
    for stage in chain[:-1]:
        assert not _copies_code(stage, names), f"stage {stage} copies operator/"
    assert _copies_code(chain[-1], names), "the last stage adds the operator's wheel"
    deps = [
        i for i in instructions() if i.op == "RUN" and "--requirement requirements.lock" in i.value
    ]
    assert deps and not _copies_code(deps[0].stage, names)
