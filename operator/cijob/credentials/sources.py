"""Where DOCKER_AUTH_CONFIG comes from: the job, the operator's environment, its config file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cijob.errors import InvalidAuthConfig

ENV_VAR = "DOCKER_AUTH_CONFIG"
HOME_CONFIG = Path(".docker") / "config.json"

Origin = Literal["job", "operator-env", "operator-config-file"]

_DESCRIPTIONS: dict[str, str] = {
    "job": "DOCKER_AUTH_CONFIG (job variable)",
    "operator-env": "DOCKER_AUTH_CONFIG (operator environment)",
    "operator-config-file": "the operator's $HOME/.docker/config.json",
}


@dataclass(frozen=True)
class AuthConfigSource:
    """The first auth config found, and where; the text holds secrets, so repr leaves it out."""

    origin: Origin
    text: str = field(repr=False)

    @property
    def description(self) -> str:
        """How messages name this source, e.g. for `parse_auth_config(source_name=...)`."""
        return _DESCRIPTIONS[self.origin]


def find_docker_auth_config(
    job_env: Mapping[str, str],
    operator_env: Mapping[str, str],
    home_config: str | None,
) -> AuthConfigSource | None:
    """The first DOCKER_AUTH_CONFIG in the runner's order: job, operator env, config file.

    The first one found is used whole; sources are not merged per registry. An empty or blank
    value counts as unset, as the Docker CLI treats an empty DOCKER_AUTH_CONFIG.
    """
    candidates: tuple[tuple[Origin, str | None], ...] = (
        ("job", job_env.get(ENV_VAR)),
        ("operator-env", operator_env.get(ENV_VAR)),
        ("operator-config-file", home_config),
    )
    for origin, text in candidates:
        if text is not None and text.strip():
            return AuthConfigSource(origin=origin, text=text)
    return None


def read_home_config(home: str | None = None) -> str | None:
    """The text of `<home>/.docker/config.json` (default `$HOME`), or None if there is none.

    Other read errors propagate: an unreadable mounted Secret is the operator's problem to
    see, not a reason to pull without credentials.
    """
    base = home if home is not None else os.environ.get("HOME") or os.path.expanduser("~")
    path = Path(base) / HOME_CONFIG
    content: bytes | None = None
    try:
        content = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    raise InvalidAuthConfig(f"{_DESCRIPTIONS['operator-config-file']} is not UTF-8 text")
