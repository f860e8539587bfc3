"""run_credential_helper against small real helper scripts put on PATH."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cijob.credentials.authconfig import Credential
from cijob.credentials.helper import run_credential_helper
from cijob.errors import CredentialHelperFailed

SECRET = "hunter2-S3CRET"


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


@pytest.fixture
def env(bin_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "LOG": str(tmp_path / "stdin.log")}


def helper(bin_dir: Path, name: str, body: str) -> Path:
    script = bin_dir / f"docker-credential-{name}"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def failure(name: str, registry: str, env: dict[str, str], **kwargs: float) -> str:
    with pytest.raises(CredentialHelperFailed) as caught:
        run_credential_helper(name, registry, env=env, **kwargs)
    exc = caught.value
    assert exc.reason == "CredentialHelperFailed"
    text = f"{exc} {exc!r} {exc.message}"
    assert SECRET not in text
    # Nothing chained: TimeoutExpired and JSONDecodeError carry the helper's output.
    assert exc.__context__ is None
    assert exc.__cause__ is None
    return exc.message


FOUND = f"""
[ "$1" = get ] || exit 64
cat > "$LOG"
printf '{{"ServerURL":"x","Username":"AWS","Secret":"{SECRET}"}}'
"""


def test_found(bin_dir: Path, env: dict[str, str]) -> None:
    helper(bin_dir, "ecr-login", FOUND)
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert run_credential_helper("ecr-login", registry, env=env) == Credential("AWS", SECRET)
    # The server URL goes on stdin, without a newline, as docker-credential-helpers sends it.
    assert Path(env["LOG"]).read_text() == registry


@pytest.mark.parametrize(
    ("registry", "sent"),
    [
        ("docker.io", "https://index.docker.io/v1/"),
        ("registry-1.docker.io", "https://index.docker.io/v1/"),
        ("Registry.Example.com:5000", "registry.example.com:5000"),
    ],
)
def test_server_address_sent(bin_dir: Path, env: dict[str, str], registry: str, sent: str) -> None:
    helper(bin_dir, "pass", FOUND)
    run_credential_helper("pass", registry, env=env)
    assert Path(env["LOG"]).read_text() == sent


def test_token_username_means_identity_token(bin_dir: Path, env: dict[str, str]) -> None:
    helper(bin_dir, "desktop", f"""printf '{{"Username":"<token>","Secret":"{SECRET}"}}'\n""")
    assert run_credential_helper("desktop", "docker.io", env=env) == Credential(
        "", "", identity_token=SECRET
    )


def test_field_names_in_any_case_and_trailing_output(bin_dir: Path, env: dict[str, str]) -> None:
    body = f"""printf '{{"username":"u","secret":"{SECRET}"}}\\n\\nlog line after the JSON\\n'\n"""
    helper(bin_dir, "odd", body)
    assert run_credential_helper("odd", "r.example.com", env=env) == Credential("u", SECRET)


def test_not_found(bin_dir: Path, env: dict[str, str]) -> None:
    helper(bin_dir, "pass", "echo 'credentials not found in native keychain'\nexit 1\n")
    assert run_credential_helper("pass", "r.example.com", env=env) is None


def test_empty_credentials_mean_none(bin_dir: Path, env: dict[str, str]) -> None:
    helper(bin_dir, "pass", """printf '{"Username":"","Secret":""}'\n""")
    assert run_credential_helper("pass", "r.example.com", env=env) is None


def test_failing_helper_names_itself_and_its_exit_code_not_its_output(
    bin_dir: Path, env: dict[str, str]
) -> None:
    body = f"""
echo '{{"Username":"AWS","Secret":"{SECRET}"}}'
printf '\\n  NoCredentialProviders: token {SECRET}\\nsecond line\\n' >&2
exit 3
"""
    helper(bin_dir, "ecr-login", body)
    message = failure("ecr-login", "123.dkr.ecr.eu-west-1.amazonaws.com", env)
    assert message == (
        "docker-credential-ecr-login (for registry 123.dkr.ecr.eu-west-1.amazonaws.com) "
        "failed with exit code 3 (its stderr is not shown: it may hold credentials)"
    )


def test_failing_without_stderr(bin_dir: Path, env: dict[str, str]) -> None:
    helper(bin_dir, "quiet", "exit 2\n")
    assert failure("quiet", "r.example.com", env).endswith("failed with exit code 2")


def test_killed_by_a_signal(bin_dir: Path, env: dict[str, str]) -> None:
    helper(bin_dir, "crash", "kill -SEGV $$\n")
    assert "was killed by SIGSEGV" in failure("crash", "r.example.com", env)


def test_hanging_helper_is_killed_with_its_children(
    bin_dir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    helper(bin_dir, "hang", f"sleep 60 &\necho $! > {pid_file}\nwait\n")
    started = time.monotonic()
    message = failure("hang", "r.example.com", env, timeout=0.5)
    assert time.monotonic() - started < 5
    assert message == (
        "docker-credential-hang (for registry r.example.com) did not answer within 0.5s "
        "and was killed"
    )
    child = int(pid_file.read_text())
    assert not _alive(child)


def _alive(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in ("Z", "X"):  # dead, waiting for a parent that may never reap it
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(
    "output",
    [
        f"not json {SECRET}",
        f'["{SECRET}"]',
        f'{{"Username": 1, "Secret": "{SECRET}"}}',
        '{"Username": "u", "Secret": 7}',
        "",
    ],
)
def test_garbage_output(bin_dir: Path, env: dict[str, str], output: str) -> None:
    helper(bin_dir, "garbage", f"printf '%s' '{output}'\n")
    message = failure("garbage", "r.example.com", env)
    assert "docker-credential-garbage" in message
    assert "something else than a credentials JSON object" in message


def test_non_utf8_output(bin_dir: Path, env: dict[str, str]) -> None:
    helper(bin_dir, "binary", "printf '\\377\\376'\n")
    assert "something else than" in failure("binary", "r.example.com", env)


def test_missing_helper(env: dict[str, str]) -> None:
    message = failure("ecr-login", "r.example.com", env)
    assert message == "docker-credential-ecr-login was not found on the operator's PATH"


def test_helper_that_is_not_executable(bin_dir: Path, env: dict[str, str]) -> None:
    helper(bin_dir, "noexec", FOUND).chmod(0o644)
    assert "was not found" in failure("noexec", "r.example.com", env)


def test_helper_that_cannot_start(bin_dir: Path, env: dict[str, str]) -> None:
    script = bin_dir / "docker-credential-broken"
    script.write_text("#!/no/such/interpreter\n")
    script.chmod(0o755)
    message = failure("broken", "r.example.com", env)
    assert message.startswith("docker-credential-broken (for registry r.example.com) could not")


@pytest.mark.parametrize("name", ["../evil", "/bin/sh", "a/b", "a\\b", "..", "", "-h"])
def test_names_with_paths_are_refused(
    bin_dir: Path, env: dict[str, str], tmp_path: Path, name: str
) -> None:
    marker = tmp_path / "ran"
    # Would run if the name were passed through to the file system.
    helper(bin_dir, "evil", f"touch {marker}\n")
    (bin_dir / "sub").mkdir()
    helper(bin_dir / "sub", "x", f"touch {marker}\n")
    assert "has an invalid name" in failure(name, "r.example.com", env)
    assert not marker.exists()


def test_default_environment_is_the_operators(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helper(bin_dir, "env", """printf '{"Username":"u","Secret":"%s"}' "$TOKEN"\n""")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    monkeypatch.setenv("TOKEN", SECRET)
    assert run_credential_helper("env", "r.example.com") == Credential("u", SECRET)
