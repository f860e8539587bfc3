"""The operator's configuration: from a file, from $CIJOB_CONFIG, or the defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from cijob.api.spec import ServiceSpec
from cijob.config import CONFIG_ENV, CONFIG_FILE_ENV, OperatorConfig, dump_config, load_config

YAML_CONFIG = """\
defaults:
  image: ruby:2.6
  services:
    - mysql:latest
    - {name: postgres:latest, alias: db}
  timeout: 30m
allowedPullPolicies: [IfNotPresent, Never]
requireDigest: true
namespaces: [team-a, team-b]
imagePullGraceSeconds: 120
afterScriptTimeoutSeconds: 60
events: false
"""


def _check_yaml_config(config: OperatorConfig) -> None:
    assert config.defaults.image == "ruby:2.6"
    assert config.defaults.services == [
        "mysql:latest",
        ServiceSpec(name="postgres:latest", alias="db"),
    ]
    assert config.defaults.timeout == "30m"
    assert config.allowedPullPolicies == ["IfNotPresent", "Never"]
    assert config.requireDigest is True
    assert config.namespaces == ["team-a", "team-b"]
    assert config.imagePullGraceSeconds == 120
    assert config.afterScriptTimeoutSeconds == 60
    assert config.events is False


def test_defaults() -> None:
    config = load_config(env={})
    assert config == OperatorConfig()
    assert config.defaults.image is None
    assert config.defaults.services == []
    assert config.defaults.timeout == "1h"
    assert config.allowedPullPolicies is None
    assert config.requireDigest is False
    assert config.namespaces == []
    assert config.imagePullGraceSeconds == 60
    assert config.afterScriptTimeoutSeconds == 300  # GitLab's 5 minutes
    assert config.events is True


def test_empty_environment_text_gives_the_defaults() -> None:
    assert load_config(env={CONFIG_ENV: ""}) == OperatorConfig()


def test_from_a_file_given_as_argument(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(YAML_CONFIG)
    _check_yaml_config(load_config(str(path), env={}))


def test_from_the_file_named_by_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(YAML_CONFIG)
    _check_yaml_config(load_config(env={CONFIG_FILE_ENV: str(path)}))


def test_the_file_wins_over_the_environment_text(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(YAML_CONFIG)
    config = load_config(str(path), env={CONFIG_ENV: "requireDigest: false"})
    assert config.requireDigest is True


def test_from_environment_text_yaml() -> None:
    _check_yaml_config(load_config(env={CONFIG_ENV: YAML_CONFIG}))


def test_from_environment_text_json() -> None:
    text = json.dumps({"defaults": {"image": "alpine:3"}, "requireDigest": True})
    config = load_config(env={CONFIG_ENV: text})
    assert config.defaults.image == "alpine:3"
    assert config.requireDigest is True


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(str(path), env={}) == OperatorConfig()


def test_reads_the_process_environment_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CONFIG_FILE_ENV, raising=False)
    monkeypatch.setenv(CONFIG_ENV, "defaults: {image: 'busybox:1'}")
    assert load_config().defaults.image == "busybox:1"


@pytest.mark.parametrize(
    "text",
    [
        "bogus: 1",
        "defaults: {image: ruby, extra: 1}",
        "allowedPullPolicies: [Sometimes]",
        "imagePullGraceSeconds: -1",
        "afterScriptTimeoutSeconds: 0",
        "credentialHelperTimeoutSeconds: 0",
        "workers: 0",
        "workers: 100000",
        "defaults: {services: [{alias: db}]}",
    ],
)
def test_invalid_configuration_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        load_config(env={CONFIG_ENV: text})


def test_dump_round_trips() -> None:
    config = load_config(env={CONFIG_ENV: YAML_CONFIG})
    again = load_config(env={CONFIG_ENV: dump_config(config)})
    assert again == config
