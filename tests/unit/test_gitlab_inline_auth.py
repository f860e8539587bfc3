"""The converter warns that an inline DOCKER_AUTH_CONFIG is refused at apply."""

from __future__ import annotations

from pathlib import Path

from cijob.gitlab.convert import convert


def test_converter_warns_that_an_inline_docker_auth_config_is_refused(tmp_path: Path) -> None:
    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text(
        "variables:\n  DOCKER_AUTH_CONFIG: '{\"auths\": {}}'\n"
        "test:\n  image: ruby:2.6\n  script: [rake]\n"
    )
    result = convert(ci, None, name=".gitlab-ci.yml")
    [warning] = [str(w) for w in result.warnings if "DOCKER_AUTH_CONFIG" in str(w)]
    assert warning.startswith(".gitlab-ci.yml:2")
    assert "put it in a Secret and name it in variablesFrom" in warning
