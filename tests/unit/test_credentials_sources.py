"""Which DOCKER_AUTH_CONFIG wins: job variable, operator environment, operator config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from cijob.credentials.sources import (
    AuthConfigSource,
    find_docker_auth_config,
    read_home_config,
)
from cijob.errors import InvalidAuthConfig

JOB = '{"auths": {"job.example.com": {"auth": "am9iOlMzQ1JFVA=="}}}'
OPERATOR = '{"auths": {"op.example.com": {"auth": "b3A6UzNDUkVU"}}}'
FILE = '{"credsStore": "S3CRET-store"}'


def test_job_variable_comes_first() -> None:
    found = find_docker_auth_config(
        {"DOCKER_AUTH_CONFIG": JOB}, {"DOCKER_AUTH_CONFIG": OPERATOR}, FILE
    )
    assert found == AuthConfigSource(origin="job", text=JOB)


def test_operator_environment_second() -> None:
    found = find_docker_auth_config({"OTHER": "x"}, {"DOCKER_AUTH_CONFIG": OPERATOR}, FILE)
    assert found == AuthConfigSource(origin="operator-env", text=OPERATOR)


def test_operator_config_file_last() -> None:
    found = find_docker_auth_config({}, {"HOME": "/root"}, FILE)
    assert found == AuthConfigSource(origin="operator-config-file", text=FILE)


def test_nothing_found() -> None:
    assert find_docker_auth_config({}, {}, None) is None


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_blank_values_count_as_unset(blank: str) -> None:
    found = find_docker_auth_config(
        {"DOCKER_AUTH_CONFIG": blank}, {"DOCKER_AUTH_CONFIG": blank}, FILE
    )
    assert found is not None and found.origin == "operator-config-file"
    assert find_docker_auth_config({}, {}, blank) is None


def test_first_source_is_used_whole_even_if_invalid() -> None:
    # Parsing is the next step's job: a broken job value must fail the job, not fall through.
    found = find_docker_auth_config({"DOCKER_AUTH_CONFIG": "{not json"}, {}, FILE)
    assert found is not None and found.origin == "job"


def test_repr_and_str_hide_the_text() -> None:
    source = AuthConfigSource(origin="job", text=JOB)
    for shown in (repr(source), str(source), f"{source}"):
        assert "S3CRET" not in shown
        assert "am9i" not in shown
        assert "job" in shown


def test_descriptions() -> None:
    assert AuthConfigSource("job", JOB).description == "DOCKER_AUTH_CONFIG (job variable)"
    assert AuthConfigSource("operator-env", JOB).description == (
        "DOCKER_AUTH_CONFIG (operator environment)"
    )
    assert AuthConfigSource("operator-config-file", JOB).description == (
        "the operator's $HOME/.docker/config.json"
    )


def write_config(home: Path, content: bytes) -> None:
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_bytes(content)


def test_read_home_config(tmp_path: Path) -> None:
    write_config(tmp_path, FILE.encode())
    assert read_home_config(str(tmp_path)) == FILE


def test_read_home_config_defaults_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, FILE.encode())
    monkeypatch.setenv("HOME", str(tmp_path))
    assert read_home_config() == FILE


def test_read_home_config_missing(tmp_path: Path) -> None:
    assert read_home_config(str(tmp_path)) is None
    assert read_home_config(str(tmp_path / "no-such-home")) is None
    (tmp_path / ".docker").write_text("a file where a directory should be")
    assert read_home_config(str(tmp_path)) is None


def test_read_home_config_not_utf8(tmp_path: Path) -> None:
    write_config(tmp_path, b'{"auths": {"\xff": {}}}')
    with pytest.raises(InvalidAuthConfig, match=r"config\.json is not UTF-8 text"):
        read_home_config(str(tmp_path))


def test_read_home_config_other_errors_propagate(tmp_path: Path) -> None:
    (tmp_path / ".docker" / "config.json").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        read_home_config(str(tmp_path))
