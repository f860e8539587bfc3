"""DOCKER_AUTH_CONFIG parsed as Docker's config loader reads it, with registry keys normalised."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from cijob.errors import InvalidAuthConfig

DOCKER_HUB = "docker.io"
# Docker's server address for Hub: `docker login` stores Hub credentials under this key, in the
# config file and in credential helpers alike, and asks helpers for it when pulling from Hub.
DOCKER_HUB_SERVER_ADDRESS = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Stricter than "no path separator" (GitLab Runner's rule): the name becomes part of a program
# name looked up on PATH, so anything beyond a plain word is refused.
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_DEFAULT_SOURCE = "DOCKER_AUTH_CONFIG"

_T = TypeVar("_T")


@dataclass(frozen=True, repr=False)
class Credential:
    """What a registry accepts: user name and password, or an OAuth identity token."""

    username: str
    password: str
    identity_token: str | None = None

    def __repr__(self) -> str:
        # User names are left out too: some registries take a token in that field.
        kind = "identity-token" if self.identity_token is not None else "password"
        return f"Credential(<{kind}, redacted>)"


@dataclass(frozen=True)
class AuthConfig:
    """The parts of a Docker config file that say how to authenticate, keyed by registry_key."""

    auths: Mapping[str, Credential] = field(default_factory=lambda: MappingProxyType({}))
    creds_store: str | None = None
    # A value of "" means: use `auths` for this registry, not `creds_store` (as Docker does).
    cred_helpers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def registry_key(key: str) -> str:
    """Normalises a config key or an image's registry to `host[:port]`, lower case.

    `https://index.docker.io/v1/`, `index.docker.io`, `registry-1.docker.io` and `docker.io`
    are all Docker Hub, `docker.io`. The port stays: `host` and `host:5000` are two registries.
    """
    rest = key.strip()
    scheme = _SCHEME.match(rest)
    if scheme:
        rest = rest[scheme.end() :]
    host = rest.split("/", 1)[0]
    # A URL may carry `user:password@`: drop it so it never reaches a key or a message.
    host = host.rpartition("@")[2].lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host


def server_address(registry: str) -> str:
    """The address Docker itself uses for `registry` (its config key and helper query)."""
    key = registry_key(registry)
    return DOCKER_HUB_SERVER_ADDRESS if key == DOCKER_HUB else key


def valid_helper_name(name: str) -> bool:
    """Whether `docker-credential-<name>` is a plain program name, with no path in it."""
    return bool(_HELPER_NAME.fullmatch(name)) and ".." not in name


def parse_auth_config(text: str, *, source_name: str = _DEFAULT_SOURCE) -> AuthConfig:
    """Parses the JSON text of a Docker config (`auths`, `credsStore`, `credHelpers`).

    Follows Docker's loader: field names match in any case (Go's encoding/json), unknown fields
    are ignored, `auth` overrides `username`/`password`, an entry with no credentials (the `{}`
    that `docker login` leaves beside a credsStore) is skipped. Raises InvalidAuthConfig naming
    `source_name`, the problem and the registry, never a value.
    """
    document = _load_json(text, source_name)
    if not isinstance(document, dict):
        raise InvalidAuthConfig(f"{source_name} must be a JSON object, not {_json_type(document)}")
    return AuthConfig(
        auths=MappingProxyType(_parse_auths(_field(document, "auths"), source_name)),
        creds_store=_parse_creds_store(_field(document, "credsStore"), source_name),
        cred_helpers=MappingProxyType(
            _parse_cred_helpers(_field(document, "credHelpers"), source_name)
        ),
    )


def _load_json(text: str, source_name: str) -> Any:
    # The exception is turned into a message outside the `except` block so that the new error
    # does not chain to the JSONDecodeError, whose `doc` attribute holds the whole secret text.
    problem = ""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    except RecursionError:
        problem = "it is nested too deeply"
    raise InvalidAuthConfig(f"{source_name} is not valid JSON: {problem}")


def _field(obj: dict[str, Any], name: str) -> Any:
    """A field as Go's encoding/json finds it: the exact key, else any key equal but for case."""
    if name in obj:
        return obj[name]
    folded = name.casefold()
    for key, value in obj.items():
        if key.casefold() == folded:
            return value
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _shown(key: str) -> str:
    """A config key as messages show it: normalised, so that no URL user info leaks."""
    registry = registry_key(key)
    return repr(registry[:100]) if registry else "'' (empty)"


def _parse_auths(raw: Any, source_name: str) -> dict[str, Credential]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidAuthConfig(f"{source_name}: auths must be an object, not {_json_type(raw)}")
    candidates: dict[str, list[tuple[str, Credential]]] = {}
    for key, entry in raw.items():
        if not isinstance(entry, dict):
            raise InvalidAuthConfig(
                f"{source_name}: the auths entry for registry {_shown(key)} must be an object, "
                f"not {_json_type(entry)}"
            )
        credential = _parse_entry(entry, key, source_name)
        registry = registry_key(key)
        if credential is not None and registry:
            candidates.setdefault(registry, []).append((key, credential))
    return {registry: _pick(registry, found) for registry, found in candidates.items()}


def _pick(registry: str, found: list[tuple[str, _T]]) -> _T:
    """Chooses among keys that name one registry (`host`, `https://host/v2/`, ...).

    Docker looks up its own server address for the registry first, then takes whichever other
    spelling Go's map iteration yields (random); the first one in the file is the stable choice.
    """
    for key, value in found:
        if key == server_address(registry):
            return value
    return found[0][1]


def _string_field(entry: dict[str, Any], name: str, key: str, source_name: str) -> str:
    value = _field(entry, name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidAuthConfig(
            f"{source_name}: {name} in the auths entry for registry {_shown(key)} must be a "
            f"string, not {_json_type(value)}"
        )
    return value


def _parse_entry(entry: dict[str, Any], key: str, source_name: str) -> Credential | None:
    auth = _string_field(entry, "auth", key, source_name)
    username = _string_field(entry, "username", key, source_name)
    password = _string_field(entry, "password", key, source_name)
    token = _string_field(entry, "identitytoken", key, source_name)
    if auth:
        username, password = _decode_auth(auth, key, source_name)
    if not (username or password or token):
        return None
    return Credential(username=username, password=password, identity_token=token or None)


def _decode_auth(auth: str, key: str, source_name: str) -> tuple[str, str]:
    where = f"{source_name}: auth for registry {_shown(key)}"
    # Go's base64 decoder skips line breaks; the kubelet also accepts unpadded values.
    data = auth.replace("\r", "").replace("\n", "")
    raw: bytes | None = None
    # Python's decoder tolerates surplus '=' where Go's refuses it: check the shape first.
    if _BASE64.fullmatch(data) and ("=" not in data or len(data) % 4 == 0):
        try:
            raw = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None:
        raise InvalidAuthConfig(f"{where} is not valid base64")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    if decoded is None:
        raise InvalidAuthConfig(f"{where} does not decode to UTF-8 text")
    username, colon, password = decoded.partition(":")
    if not colon:
        raise InvalidAuthConfig(f"{where} is not user:password (no colon after decoding)")
    if not username:
        raise InvalidAuthConfig(f"{where} has an empty user name")
    # Docker trims NUL padding off the password; so do we, to send what `docker pull` sends.
    return username, password.strip("\x00")


def _parse_creds_store(raw: Any, source_name: str) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise InvalidAuthConfig(
            f"{source_name}: credsStore must be a string, not {_json_type(raw)}"
        )
    if not valid_helper_name(raw):
        raise InvalidAuthConfig(
            f"{source_name}: credsStore is not a valid credential helper name "
            "(letters, digits, '.', '_' and '-' only, no path)"
        )
    return raw


def _parse_cred_helpers(raw: Any, source_name: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidAuthConfig(
            f"{source_name}: credHelpers must be an object, not {_json_type(raw)}"
        )
    candidates: dict[str, list[tuple[str, str]]] = {}
    for key, helper in raw.items():
        where = f"{source_name}: the credHelpers entry for registry {_shown(key)}"
        if not isinstance(helper, str):
            raise InvalidAuthConfig(f"{where} must be a string, not {_json_type(helper)}")
        if helper and not valid_helper_name(helper):
            raise InvalidAuthConfig(
                f"{where} is not a valid credential helper name "
                "(letters, digits, '.', '_' and '-' only, no path)"
            )
        registry = registry_key(key)
        if registry:
            candidates.setdefault(registry, []).append((key, helper))
    return {registry: _pick(registry, found) for registry, found in candidates.items()}
