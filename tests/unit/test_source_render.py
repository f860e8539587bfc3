"""spec.source in the pod: the clone init container, its volumes, the CI_* variables."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cijob.config import OperatorConfig
from cijob.job import Job, parse_spec
from cijob.render.pod import get_pod, images_of
from cijob.source import clone
from cijob.source.render import (
    CLONE_CONTAINER,
    credential_url,
    project_path,
    repository_path,
)

Manifest = dict[str, Any]
URL = "https://git.example.com/group/project.git"
SHA = "4f2c" + "a" * 36


def job(source: dict[str, Any] | None = None, **fields: Any) -> Job:
    spec: dict[str, Any] = {"image": "ruby:2.6", "script": ["rake spec"], **fields}
    if source is not None:
        spec["source"] = {"git": source}
    return Job(name="rspec", namespace="team-a", uid="u1", generation=1, spec=parse_spec(spec))


def pod(j: Job, **config: Any) -> Manifest:
    return get_pod(j, 1, OperatorConfig.model_validate(config))


def env(container: Manifest) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def init(p: Manifest) -> list[Manifest]:
    out: list[Manifest] = p["spec"].get("initContainers", [])
    return out


def test_without_source_the_pod_is_as_before() -> None:
    p = pod(job())
    assert "initContainers" not in p["spec"]
    assert p["spec"]["volumes"] == [{"name": "builds", "emptyDir": {}}]
    assert "CIJOB_SOURCE_ENV" not in env(p["spec"]["containers"][0])
    assert p["spec"]["containers"][0]["workingDir"] == "/builds/team-a/rspec"


def test_clone_comes_first_and_runs_to_completion_before_the_services() -> None:
    p = pod(job({"url": URL}, services=["postgres:11.7"]))
    names = [c["name"] for c in init(p)]
    assert names == [CLONE_CONTAINER, "svc-0"]
    clone_c = init(p)[0]
    assert "restartPolicy" not in clone_c  # a regular init container, not a sidecar
    assert clone_c["command"] == clone.command()


def test_clone_image_is_the_helper_image() -> None:
    assert init(pod(job({"url": URL})))[0]["image"] == "cijob-operator:0.1.0"
    assert init(pod(job({"url": URL}), helperImage="reg/helper:1"))[0]["image"] == "reg/helper:1"


def test_clone_inputs() -> None:
    source = {"url": URL, "ref": "main", "commit": SHA, "depth": 0, "submodules": "recursive"}
    e = env(init(pod(job(source)))[0])
    assert e[clone.URL_ENV] == URL
    assert e[clone.REF_ENV] == "main"
    assert e[clone.COMMIT_ENV] == SHA
    assert e[clone.DEPTH_ENV] == "0"
    assert e[clone.SUBMODULES_ENV] == "recursive"
    assert e[clone.DIR_ENV] == "/builds/group/project"
    assert e[clone.CREDENTIAL_URL_ENV] == "https://git.example.com"


def test_defaults_are_gitlabs() -> None:
    e = env(init(pod(job({"url": URL})))[0])
    assert e[clone.DEPTH_ENV] == "20"
    assert e[clone.SUBMODULES_ENV] == "none"
    assert e[clone.REF_ENV] == "" and e[clone.COMMIT_ENV] == ""


def test_a_dollar_in_the_url_stays_as_written() -> None:
    e = env(init(pod(job({"url": "https://h.example/a$(x)/p.git"})))[0])
    assert e[clone.URL_ENV] == "https://h.example/a$$(x)/p.git"


def test_working_dir_is_the_repositorys_path_unless_project_is_set() -> None:
    assert pod(job({"url": URL}))["spec"]["containers"][0]["workingDir"] == "/builds/group/project"
    explicit = pod(job({"url": URL}, project="x/y"))
    assert explicit["spec"]["containers"][0]["workingDir"] == "/builds/x/y"


def test_gitlab_variables_known_before_the_clone() -> None:
    build = pod(job({"url": URL}))["spec"]["containers"][0]
    e = env(build)
    assert e["CI_REPOSITORY_URL"] == URL
    assert e["CI_PROJECT_PATH"] == "group/project"
    assert e["CI_PROJECT_NAME"] == "project"
    assert e["CI_PROJECT_NAMESPACE"] == "group"
    assert e["CIJOB_SOURCE_ENV"] == clone.SOURCE_ENV_FILE
    assert e["GIT_CONFIG_KEY_0"] == "safe.directory"


def test_the_secret_is_mounted_into_the_clone_container_only() -> None:
    p = pod(job({"url": URL, "secretRef": {"name": "git-creds"}}, services=["redis"]))
    volumes = {v["name"]: v for v in p["spec"]["volumes"]}
    secret_volumes = [n for n, v in volumes.items() if "secret" in v]
    assert len(secret_volumes) == 1
    assert volumes[secret_volumes[0]]["secret"]["secretName"] == "git-creds"
    for c in [*p["spec"]["containers"], *init(p)]:
        mounted = {m["name"] for m in c.get("volumeMounts", [])}
        assert (secret_volumes[0] in mounted) == (c["name"] == CLONE_CONTAINER), c["name"]
        for e in c.get("env", []):
            assert "git-creds" not in json.dumps(e)  # no secretKeyRef to it anywhere


def test_the_private_scratch_volume_is_the_clone_containers_only() -> None:
    p = pod(job({"url": URL}))
    build_mounts = {m["name"] for m in p["spec"]["containers"][0]["volumeMounts"]}
    clone_mounts = {m["name"] for m in init(p)[0]["volumeMounts"]}
    assert clone_mounts - build_mounts  # the scratch space
    assert "builds" in clone_mounts


def test_images_of_lists_the_clone_container() -> None:
    assert ("clone", "cijob-operator:0.1.0") in images_of(job({"url": URL}), OperatorConfig())


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://git.example.com/group/project.git", "group/project"),
        ("https://git.example.com/group/sub/project", "group/sub/project"),
        ("ssh://git@host:2222/a/b.git", "a/b"),
        ("git@github.com:org/repo.git", "org/repo"),
        ("git://host/repo.git/", "repo"),
        ("https://host/", None),
        ("https://host/a/../b.git", None),
    ],
)
def test_repository_path(url: str, path: str | None) -> None:
    assert repository_path(url) == path


def test_project_path_falls_back_to_namespace_and_name() -> None:
    assert project_path(job({"url": "https://host/"})) == "team-a/rspec"


@pytest.mark.parametrize(
    ("url", "scope"),
    [
        ("https://git.example.com/g/p.git", "https://git.example.com"),
        ("http://10.250.0.9:8080/git/p.git", "http://10.250.0.9:8080"),
        ("https://user@host/p", "https://host"),
        ("git@host:g/p.git", ""),
    ],
)
def test_credentials_are_scoped_to_the_repositorys_host(url: str, scope: str) -> None:
    assert credential_url(url) == scope


def test_a_service_aliased_clone_does_not_take_the_clone_containers_name() -> None:
    p = pod(job({"url": URL}, services=[{"name": "redis", "alias": "clone"}]))
    assert [c["name"] for c in init(p)] == [CLONE_CONTAINER, "svc-0"]
