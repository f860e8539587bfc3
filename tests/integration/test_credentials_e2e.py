"""DOCKER_AUTH_CONFIG to imagePullSecret, end to end on the real API server (the kubelet
simulator plays the node)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from integration.conftest import OperatorFactory
from integration.support import CiJobs
from testground.kubesim import KubeSim

pytestmark = pytest.mark.cluster

PASSWORD = "s3cr3t-Pa55w0rd-7f1c2e"
PRIVATE = "registry.example.com:5000/team/app:1.0"


def auth(user: str = "ci", password: str = PASSWORD) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def config(auths: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"auths": auths, **extra})


def job_spec(image: str = PRIVATE, **extra: Any) -> dict[str, Any]:
    return {"image": image, "script": ["make"], **extra}


def pull_secret(cijobs: CiJobs, namespace: str, job: str) -> dict[str, Any] | None:
    try:
        s = cijobs.core.read_namespaced_secret(f"{job}-registry-credentials", namespace)
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise
    result: dict[str, Any] = cijobs.api.sanitize_for_serialization(s)
    return result


def registries(secret: dict[str, Any]) -> dict[str, Any]:
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    data = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    result: dict[str, Any] = data["auths"]
    return result


def finished(cijobs: CiJobs, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = cijobs.wait_phase(namespace, name)["status"]
    return status


def test_kubesim_job_variable_becomes_an_owned_pull_secret_listed_in_the_pod(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    created = cijobs.create(
        namespace,
        "priv",
        job_spec(
            variables={
                "DOCKER_AUTH_CONFIG": config({"registry.example.com:5000": {"auth": auth()}})
            },
            imagePullSecrets=[{"name": "existing"}],
        ),
    )
    assert finished(cijobs, namespace, "priv")["phase"] == "Succeeded"
    secret = pull_secret(cijobs, namespace, "priv")
    assert secret is not None
    entry = registries(secret)["registry.example.com:5000"]
    assert (entry["username"], entry["password"]) == ("ci", PASSWORD)
    owner = secret["metadata"]["ownerReferences"][0]
    assert owner["uid"] == created["metadata"]["uid"] and owner["controller"] is True
    pod = cijobs.pod(namespace, "priv-1")
    assert pod is not None
    assert pod["spec"]["imagePullSecrets"] == [
        {"name": "existing"},
        {"name": "priv-registry-credentials"},
    ]
    assert secret["metadata"]["creationTimestamp"] <= pod["metadata"]["creationTimestamp"]


def test_kubesim_sources_in_order_job_then_operator_env_then_config_file(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(
        config({"registry.example.com:5000": {"auth": auth("from-file")}})
    )
    start_operator(
        env={
            "HOME": str(home),
            "DOCKER_AUTH_CONFIG": config({"registry.example.com:5000": {"auth": auth("from-env")}}),
        }
    )
    cijobs.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "creds"},
            "stringData": {
                "DOCKER_AUTH_CONFIG": config(
                    {"registry.example.com:5000": {"auth": auth("from-secret")}}
                )
            },
        },
    )
    cijobs.create(
        namespace,
        "inline",
        job_spec(
            variables={
                "DOCKER_AUTH_CONFIG": config(
                    {"registry.example.com:5000": {"username": "from-job", "password": PASSWORD}}
                )
            }
        ),
    )
    cijobs.create(
        namespace, "fromsecret", job_spec(variablesFrom=[{"secretRef": {"name": "creds"}}])
    )
    cijobs.create(namespace, "fromenv", job_spec())
    for name, user in [
        ("inline", "from-job"),
        ("fromsecret", "from-secret"),
        ("fromenv", "from-env"),
    ]:
        assert finished(cijobs, namespace, name)["phase"] == "Succeeded"
        secret = pull_secret(cijobs, namespace, name)
        assert secret is not None, name
        assert registries(secret)["registry.example.com:5000"]["username"] == user


def test_kubesim_one_secret_key_as_docker_auth_config(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    cijobs.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "reg"},
            "stringData": {
                "auth.json": config({"registry.example.com:5000": {"auth": auth("from-key")}})
            },
        },
    )
    key_ref = {"name": "reg", "key": "auth.json"}
    cijobs.create(
        namespace,
        "fromkey",
        job_spec(variablesFrom=[{"secretKeyRef": key_ref, "variable": "DOCKER_AUTH_CONFIG"}]),
    )
    cijobs.create(
        namespace,
        "nokey",
        job_spec(
            variablesFrom=[
                {"secretKeyRef": {**key_ref, "key": "gone"}, "variable": "DOCKER_AUTH_CONFIG"}
            ]
        ),
    )
    assert finished(cijobs, namespace, "fromkey")["phase"] == "Succeeded"
    secret = pull_secret(cijobs, namespace, "fromkey")
    assert secret is not None
    assert registries(secret)["registry.example.com:5000"]["username"] == "from-key"
    pod = cijobs.pod(namespace, "fromkey-1")
    assert pod is not None and PASSWORD not in json.dumps(pod)
    status = finished(cijobs, namespace, "nokey")
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidSpec")
    assert "Secret 'reg' has no key 'gone'" in status["message"]


def test_kubesim_operator_config_file_is_the_last_source(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(
        config({"https://index.docker.io/v1/": {"auth": auth("hub-user")}})
    )
    start_operator(env={"HOME": str(home)})
    cijobs.create(namespace, "hub", job_spec(image="ruby:2.6"))
    assert finished(cijobs, namespace, "hub")["phase"] == "Succeeded"
    secret = pull_secret(cijobs, namespace, "hub")
    assert secret is not None
    assert registries(secret)["docker.io"]["username"] == "hub-user"


def test_kubesim_least_privilege_and_the_port_rule(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    five = {
        "registry.example.com": {"auth": auth("no-port")},
        "registry.example.com:5000": {"auth": auth("port-5000")},
        "registry.example.com:5001": {"auth": auth("port-5001")},
        "quay.io": {"auth": auth("quay")},
        "https://index.docker.io/v1/": {"auth": auth("hub")},
    }
    start_operator()
    cijobs.create(namespace, "one", job_spec(variables={"DOCKER_AUTH_CONFIG": config(five)}))
    cijobs.create(
        namespace,
        "none",
        job_spec(image="ghcr.io/x/y:1", variables={"DOCKER_AUTH_CONFIG": config(five)}),
    )
    assert finished(cijobs, namespace, "one")["phase"] == "Succeeded"
    secret = pull_secret(cijobs, namespace, "one")
    assert secret is not None
    only = registries(secret)
    assert list(only) == ["registry.example.com:5000"]
    assert only["registry.example.com:5000"]["username"] == "port-5000"
    assert finished(cijobs, namespace, "none")["phase"] == "Succeeded"
    assert pull_secret(cijobs, namespace, "none") is None
    pod = cijobs.pod(namespace, "none-1")
    assert pod is not None and not pod["spec"].get("imagePullSecrets")


def test_kubesim_credential_helper_on_path(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-testhelper"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        f'printf \'{{"ServerURL":"%s","Username":"helped","Secret":"{PASSWORD}"}}\' '
        '"$server"\n'
    )
    helper.chmod(0o755)
    start_operator(env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    cijobs.create(
        namespace,
        "helped",
        job_spec(
            variables={
                "DOCKER_AUTH_CONFIG": json.dumps(
                    {"credHelpers": {"registry.example.com:5000": "testhelper"}}
                )
            }
        ),
    )
    cijobs.create(
        namespace,
        "missing",
        job_spec(variables={"DOCKER_AUTH_CONFIG": json.dumps({"credsStore": "ecr-login"})}),
    )
    assert finished(cijobs, namespace, "helped")["phase"] == "Succeeded"
    secret = pull_secret(cijobs, namespace, "helped")
    assert secret is not None
    assert registries(secret)["registry.example.com:5000"]["password"] == PASSWORD
    status = finished(cijobs, namespace, "missing")
    assert (status["phase"], status["reason"]) == ("Failed", "CredentialHelperFailed")
    assert "docker-credential-ecr-login" in status["message"]


BAD = {
    "malformed-json": ('{"auths": {', "InvalidAuthConfig"),
    "bad-base64": (
        config({"registry.example.com:5000": {"auth": "%%%" + PASSWORD}}),
        "InvalidAuthConfig",
    ),
    "no-colon": (
        config(
            {"registry.example.com:5000": {"auth": base64.b64encode(PASSWORD.encode()).decode()}}
        ),
        "InvalidAuthConfig",
    ),
    "helper-path": (json.dumps({"credsStore": "../../bin/sh"}), "InvalidAuthConfig"),
}


@pytest.mark.parametrize(("text", "reason"), BAD.values(), ids=BAD.keys())
def test_kubesim_bad_auth_config_fails_without_showing_it(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    text: str,
    reason: str,
) -> None:
    op = start_operator()
    cijobs.create(namespace, "bad", job_spec(variables={"DOCKER_AUTH_CONFIG": text}))
    status = finished(cijobs, namespace, "bad")
    assert (status["phase"], status["reason"]) == ("Failed", reason), status
    assert status["message"]
    assert PASSWORD not in json.dumps(status)
    assert PASSWORD not in json.dumps(cijobs.events(namespace, "bad"))
    assert PASSWORD not in op.log()


def test_kubesim_password_appears_nowhere_but_the_secret(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    op = start_operator(log_level="debug")
    cijobs.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "creds"},
            "stringData": {
                "DOCKER_AUTH_CONFIG": config({"registry.example.com:5000": {"auth": auth()}})
            },
        },
    )
    cijobs.create(
        namespace,
        "inline",
        job_spec(
            variables={
                "DOCKER_AUTH_CONFIG": config(
                    {"registry.example.com:5000": {"username": "u", "password": PASSWORD}}
                )
            }
        ),
    )
    kubesim.plan_job(namespace, "fromsecret", kubesim.default.but(exit_code=1), attempt=1)
    cijobs.create(
        namespace,
        "fromsecret",
        job_spec(variablesFrom=[{"secretRef": {"name": "creds"}}], retry={"max": 1}),
    )
    for name in ("inline", "fromsecret"):
        status = finished(cijobs, namespace, name)
        assert status["phase"] == "Succeeded"
        assert PASSWORD not in json.dumps(status)
        assert PASSWORD not in json.dumps(cijobs.events(namespace, name))
        for pod in cijobs.pods(namespace, name):
            assert PASSWORD not in json.dumps(pod), pod["metadata"]["name"]
    assert PASSWORD not in op.log()
    assert base64.b64encode(PASSWORD.encode()).decode() not in op.log()
    assert auth() not in op.log()
