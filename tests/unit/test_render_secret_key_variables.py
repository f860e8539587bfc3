"""variablesFrom's secretKeyRef: one key of a Secret as one variable, by reference only."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from cijob.config import OperatorConfig
from cijob.credentials.pull import job_env
from cijob.errors import InvalidSpec
from cijob.job import Job, parse_spec
from cijob.kube import Kube
from cijob.render.pod import get_pod

KEY_REF = {"secretKeyRef": {"name": "tokens", "key": "npm"}, "variable": "NPM_TOKEN"}


def _job(**fields: Any) -> Job:
    spec = parse_spec({"image": "node:22", "script": ["npm ci"], **fields})
    return Job(name="j", namespace="ns", uid="u", generation=1, spec=spec)


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod["spec"]["containers"], *pod["spec"].get("initContainers", [])]


def test_a_secret_key_becomes_a_value_from_reference_in_every_container() -> None:
    pod = get_pod(_job(variablesFrom=[KEY_REF], services=["redis:7"]), 1, OperatorConfig())
    for container in _containers(pod):
        [entry] = [e for e in container["env"] if e["name"] == "NPM_TOKEN"]
        assert entry == {
            "name": "NPM_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "tokens", "key": "npm"}},
        }
        assert "envFrom" not in container


def test_optional_is_passed_on_and_inline_variables_win() -> None:
    ref = {"secretKeyRef": {"name": "t", "key": "k", "optional": True}, "variable": "A"}
    shadowed = {"secretKeyRef": {"name": "t", "key": "k"}, "variable": "B"}
    pod = get_pod(
        _job(variablesFrom=[ref, shadowed], variables={"B": "inline"}), 1, OperatorConfig()
    )
    env = pod["spec"]["containers"][0]["env"]
    assert {
        "name": "A",
        "valueFrom": {"secretKeyRef": {"name": "t", "key": "k", "optional": True}},
    } in env
    assert [e for e in env if e["name"] == "B"] == [{"name": "B", "value": "inline"}]


def test_docker_auth_config_from_a_secret_key_is_not_in_the_pod() -> None:
    ref = {"secretKeyRef": {"name": "reg", "key": "auth"}, "variable": "DOCKER_AUTH_CONFIG"}
    pod = get_pod(_job(variablesFrom=[ref]), 1, OperatorConfig())
    assert "DOCKER_AUTH_CONFIG" not in str(pod)


class _Secrets:
    """The one read job_env makes, from a dict of Secrets."""

    def __init__(self, secrets: dict[str, dict[str, str]]) -> None:
        self.secrets = secrets

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.secrets.get(name)


def _job_env(job: Job, secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    return asyncio.run(job_env(cast(Kube, _Secrets(secrets)), job))


AUTH_KEY = {"secretKeyRef": {"name": "reg", "key": "auth.json"}, "variable": "DOCKER_AUTH_CONFIG"}


def test_docker_auth_config_from_a_key_wins_over_whole_secrets() -> None:
    job = _job(variablesFrom=[{"secretRef": {"name": "env"}}, AUTH_KEY])
    secrets = {"env": {"DOCKER_AUTH_CONFIG": "from-env"}, "reg": {"auth.json": "from-key"}}
    assert _job_env(job, secrets) == {"DOCKER_AUTH_CONFIG": "from-key"}


def test_inline_docker_auth_config_wins_over_a_key() -> None:
    job = _job(variablesFrom=[AUTH_KEY], variables={"DOCKER_AUTH_CONFIG": "inline"})
    assert _job_env(job, {"reg": {"auth.json": "from-key"}}) == {"DOCKER_AUTH_CONFIG": "inline"}


@pytest.mark.parametrize(
    ("secrets", "message"),
    [({}, "Secret 'reg' not found"), ({"reg": {"other": "x"}}, "has no key 'auth.json'")],
)
def test_a_missing_secret_or_key_is_invalid_spec(
    secrets: dict[str, dict[str, str]], message: str
) -> None:
    with pytest.raises(InvalidSpec, match=r"^spec\.variablesFrom\[0\]: .*" + message):
        _job_env(_job(variablesFrom=[AUTH_KEY]), secrets)


def test_an_optional_missing_key_falls_through_to_the_next_source() -> None:
    optional = {**AUTH_KEY, "secretKeyRef": {**AUTH_KEY["secretKeyRef"], "optional": True}}
    job = _job(variablesFrom=[optional, {"secretRef": {"name": "env"}}])
    assert _job_env(job, {"env": {"DOCKER_AUTH_CONFIG": "from-env"}}) == {
        "DOCKER_AUTH_CONFIG": "from-env"
    }
