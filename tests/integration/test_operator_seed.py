"""The seed's examples as CiJobs, on the real API server, with the kubelet simulator as node."""

from __future__ import annotations

import pytest

from integration.conftest import OperatorFactory
from integration.support import CiJobs
from testground.kubesim import KubeSim

pytestmark = pytest.mark.cluster

DIGEST = "sha256:" + "ab" * 32


def _containers(pod: dict) -> dict[str, dict]:
    spec = pod["spec"]
    return {c["name"]: c for c in [*spec["containers"], *(spec.get("initContainers") or [])]}


def test_kubesim_ruby_with_postgres_service_succeeds(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    cijobs.create(
        namespace,
        "rspec",
        {
            "image": "ruby:2.6",
            "services": ["postgres:11.7"],
            "variables": {"RAILS_ENV": "test"},
            "beforeScript": ["bundle install"],
            "script": ["bundle exec rake spec"],
        },
    )
    job = cijobs.wait_phase(namespace, "rspec")
    status = job["status"]
    assert status["phase"] == "Succeeded", status
    assert status["exitCode"] == 0
    assert status["attempt"] == 1 and status["podName"] == "rspec-1"
    assert status["startTime"] and status["completionTime"]
    images = {i["container"]: i for i in status["images"]}
    assert images["build"]["image"] == "ruby:2.6"
    assert images["build"]["imageID"].startswith("docker.io/library/ruby@sha256:")
    assert images["svc-0"]["imageID"].startswith("docker.io/library/postgres@sha256:")
    cond = status["conditions"][0]
    assert cond["type"] == "Succeeded" and cond["status"] == "True"
    assert cond["observedGeneration"] == job["metadata"]["generation"]

    pod = cijobs.pod(namespace, "rspec-1")
    assert pod is not None
    assert pod["metadata"]["labels"]["cijob.dev/job"] == "rspec"
    assert pod["metadata"]["labels"]["cijob.dev/attempt"] == "1"
    owner = pod["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "CiJob" and owner["controller"] is True
    assert owner["uid"] == job["metadata"]["uid"]
    assert pod["spec"]["restartPolicy"] == "Never"
    sidecar = pod["spec"]["initContainers"][0]
    assert sidecar["name"] == "svc-0" and sidecar["restartPolicy"] == "Always"
    assert pod["spec"]["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": ["postgres"]}]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["RAILS_ENV"] == "test" and env["CI_PROJECT_DIR"] == f"/builds/{namespace}/rspec"
    assert "bundle exec rake spec" in env["CIJOB_SCRIPT"]


@pytest.mark.parametrize(
    ("entrypoint", "command", "args_first"),
    [([""], ["sh", "-c"], None), (["/bin/sh", "-c"], ["/bin/sh", "-c"], "CIJOB_SHELL=sh")],
)
def test_kubesim_super_sql_entrypoint_override(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    entrypoint: list[str],
    command: list[str],
    args_first: str | None,
) -> None:
    start_operator()
    cijobs.create(
        namespace,
        "sql",
        {
            "image": {"name": "super/sql:experimental", "entrypoint": entrypoint},
            "script": ["sql --version"],
        },
    )
    assert cijobs.wait_phase(namespace, "sql")["status"]["phase"] == "Succeeded"
    build = cijobs.pod(namespace, "sql-1")["spec"]["containers"][0]  # type: ignore[index]
    assert build["command"][: len(command)] == command
    if args_first is None:
        assert "args" not in build or not build["args"]
    else:
        assert args_first in build["args"][0]  # the launcher, as one string


def test_kubesim_map_form_service_with_alias_and_registry_port(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    cijobs.create(
        namespace,
        "mapped",
        {
            "image": {
                "name": "registry.example.com:5000/namespace/image:tag",
                "pullPolicy": "always",
            },
            "services": [
                {
                    "name": "tutum/wordpress:latest",
                    "alias": "wp, blog",
                    "variables": {"WP": "1"},
                    "command": ["--port", "80"],
                }
            ],
            "script": ["curl http://wp/"],
        },
    )
    status = cijobs.wait_phase(namespace, "mapped")["status"]
    assert status["phase"] == "Succeeded", status
    pod = cijobs.pod(namespace, "mapped-1")
    assert pod is not None
    c = _containers(pod)
    assert c["build"]["image"] == "registry.example.com:5000/namespace/image:tag"
    assert c["build"]["imagePullPolicy"] == "Always"
    assert c["wp"]["args"] == ["--port", "80"]
    assert {"name": "WP", "value": "1"} in c["wp"]["env"]
    assert pod["spec"]["hostAliases"][0]["hostnames"] == ["wp", "blog", "tutum-wordpress"]
    ids = {i["container"]: i.get("imageID", "") for i in status["images"]}
    assert ids["build"].startswith("registry.example.com:5000/namespace/image@sha256:")


def test_kubesim_pinned_digest_is_what_the_status_records(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    cijobs.create(namespace, "pinned", {"image": f"ruby:2.6.8@{DIGEST}", "script": ["ruby -v"]})
    status = cijobs.wait_phase(namespace, "pinned")["status"]
    assert status["phase"] == "Succeeded"
    assert status["images"][0]["image"] == f"ruby:2.6.8@{DIGEST}"
    assert status["images"][0]["imageID"].endswith(DIGEST)


def test_kubesim_operator_defaults_image_and_services(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator(
        {
            "defaults": {
                "image": "ruby:2.6",
                "services": ["postgres:latest", "mysql:latest"],
                "timeout": "10m",
            }
        }
    )
    cijobs.create(
        namespace,
        "plain",
        {"services": [{"name": "redis", "alias": "cache"}], "script": ["echo hi"]},
    )
    assert cijobs.wait_phase(namespace, "plain")["status"]["phase"] == "Succeeded"
    pod = cijobs.pod(namespace, "plain-1")
    assert pod is not None
    assert pod["spec"]["containers"][0]["image"] == "ruby:2.6"
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["svc-0", "svc-1", "cache"]
    assert pod["spec"]["activeDeadlineSeconds"] == 600
