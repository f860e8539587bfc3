"""Runs `docker-credential-<name> get`, the one place here that touches the outside world."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from typing import Any

from cijob.credentials.authconfig import Credential, server_address, valid_helper_name
from cijob.errors import CredentialHelperFailed

PREFIX = "docker-credential-"
# docker-credential-helpers' standard answer, printed on stdout with exit code 1.
NOT_FOUND_MESSAGE = "credentials not found in native keychain"
# docker/cli stores an identity token under this user name and reads it back the same way.
TOKEN_USERNAME = "<token>"


def run_credential_helper(
    name: str,
    registry: str,
    *,
    timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
) -> Credential | None:
    """Asks the helper for `registry`'s credentials, as docker-credential-helpers' client does.

    The helper is looked up on the PATH of `env` (default: the operator's environment) and is
    sent Docker's server address (`https://index.docker.io/v1/` for Hub, else `host[:port]`).
    Returns None when the helper has no credentials for it. Raises CredentialHelperFailed when
    the helper is missing, fails, times out (it is killed with its process group) or answers
    something else than credentials. Messages name the helper and its exit code, never its
    stdout or stderr, which can hold secrets even on failure.
    """
    program = PREFIX + name
    if not valid_helper_name(name):
        raise CredentialHelperFailed(
            f"credential helper {program[:120]!r} has an invalid name "
            "(letters, digits, '.', '_' and '-' only, no path)"
        )
    environment = dict(os.environ if env is None else env)
    executable = shutil.which(program, path=environment.get("PATH", os.defpath))
    if executable is None:
        raise CredentialHelperFailed(f"{program} was not found on the operator's PATH")
    server = server_address(registry)
    what = f"{program} (for registry {server})"

    started: subprocess.Popen[bytes] | None = None
    start_error = ""
    try:
        started = subprocess.Popen(
            [executable, "get"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            # Its own process group, so that a timeout kills whatever the helper started too.
            start_new_session=True,
        )
    except OSError as exc:
        start_error = exc.strerror or type(exc).__name__
    if started is None:
        raise CredentialHelperFailed(f"{what} could not be started: {start_error}")

    outputs = _communicate(started, server.encode(), timeout)
    if outputs is None:
        raise CredentialHelperFailed(f"{what} did not answer within {timeout:g}s and was killed")
    stdout, stderr = outputs
    code = started.returncode
    if code != 0:
        if stdout.decode("utf-8", "replace").strip() == NOT_FOUND_MESSAGE:
            return None
        # Its stderr is left out, as its stdout: a helper may print what it was given or got.
        raise CredentialHelperFailed(f"{what} {_exit_description(code)}{_stderr_note(stderr)}")
    response = _parse_response(stdout)
    if response is None:
        raise CredentialHelperFailed(
            f"{what} answered with something else than a credentials JSON object "
            "(with string Username and Secret)"
        )
    username, secret = response
    if not username and not secret:
        return None
    if username == TOKEN_USERNAME:
        return Credential(username="", password="", identity_token=secret)
    return Credential(username=username, password=secret)


def _communicate(
    process: subprocess.Popen[bytes], data: bytes, timeout: float
) -> tuple[bytes, bytes] | None:
    """The helper's stdout and stderr, or None if it ran out of time (it is then killed)."""
    try:
        return process.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        pass  # handled below, so that no error chains to TimeoutExpired and its partial output
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.communicate(timeout=1.0)
    except subprocess.TimeoutExpired:
        pass  # a descendant left the group and holds a pipe; give up on reading it
    finally:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.kill()
        process.wait()
    return None


def _parse_response(stdout: bytes) -> tuple[str, str] | None:
    """(Username, Secret) from the helper's JSON answer, or None if it is not one."""
    try:
        text = stdout.decode("utf-8").lstrip()
        # Like Go's json.Decoder, read the first JSON value and ignore what follows it.
        document: Any = json.JSONDecoder().raw_decode(text)[0]
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    username = _field(document, "Username")
    secret = _field(document, "Secret")
    if not isinstance(username, str) or not isinstance(secret, str):
        return None
    return username, secret


def _field(document: dict[str, Any], name: str) -> Any:
    """Go's encoding/json field lookup: exact name, else any case; a missing field reads ""."""
    if name in document:
        value = document[name]
    else:
        value = next((v for k, v in document.items() if k.casefold() == name.casefold()), "")
    return "" if value is None else value


def _exit_description(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"failed with exit code {code}"


def _stderr_note(stderr: bytes) -> str:
    return " (its stderr is not shown: it may hold credentials)" if stderr.strip() else ""
