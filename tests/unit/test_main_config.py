"""A bad configuration or bad flags end `cijob-operator` with one line and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cijob.config import CONFIG_ENV, CONFIG_FILE_ENV
from cijob.main import main

ROOT = Path(__file__).resolve().parents[2]


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """main()'s one line on stderr; it must exit 2 before connecting anywhere."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("text", "key", "what"),
    [
        ("workers: 4\nbogus: 1\n", "bogus", "unknown key"),
        ("defaults: {image: ruby, extra: 1}\n", "defaults.extra", "unknown key"),
        ("workers: many\n", "workers", "valid integer"),
        ("requireDigest: maybe\n", "requireDigest", "valid boolean"),
        ("workers: 0\n", "workers", "greater than or equal to 1"),
        ("allowedPullPolicies: [Sometimes]\n", "allowedPullPolicies[0]", "'IfNotPresent'"),
        ("credentialHelperTimeoutSeconds: 0\n", "credentialHelperTimeoutSeconds", "greater than 0"),
        ("defaults: {image: [ruby]}\n", "defaults.image", "valid string"),
        ("defaults: {services: [{alias: db}]}\n", "defaults.services[0].name", "required"),
        ("defaults: {timeout: soon}\n", "defaults.timeout", "soon"),
        ("pendingTimeoutSeconds: 0\n", "pendingTimeoutSeconds", "greater than or equal to 1"),
    ],
)
def test_a_bad_key_or_value_is_one_line(
    text: str, key: str, what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    err = refused(["--config", str(path)], capsys)
    assert err.count("\n") == 1
    assert err.startswith(f"cijob-operator: {path}: ")
    assert f" {key}: " in err and what in err


def test_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nowhere.yaml"
    err = refused(["--config", str(path)], capsys)
    assert err == f"cijob-operator: {path}: cannot read it: No such file or directory\n"


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("workers: [1\n", "not YAML: "),
        ("- workers\n", "expected a mapping of settings, got a list"),
        ("just words\n", "expected a mapping of settings, got a string"),
        ("\xff\xfe", "not YAML: not UTF-8"),
    ],
)
def test_a_file_that_is_not_a_yaml_mapping(
    text: str, what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(text.encode("latin-1"))
    err = refused(["--config", str(path)], capsys)
    assert err.count("\n") == 1 and err.startswith(f"cijob-operator: {path}: {what}")


def test_the_yaml_error_says_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("workers: 4\ndefaults: {image: [ruby\n")
    assert "line 3" in refused(["--config", str(path)], capsys)


def test_the_environment_is_named_as_the_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(CONFIG_FILE_ENV, raising=False)
    monkeypatch.setenv(CONFIG_ENV, "events: sometimes")
    err = refused([], capsys)
    assert err.startswith(f"cijob-operator: ${CONFIG_ENV}: events: ")
    path = tmp_path / "from-env.yaml"
    path.write_text("nope: 1\n")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(path))
    assert refused([], capsys) == f"cijob-operator: {path}: nope: unknown key\n"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--health-port", "eighty"], "argument --health-port: invalid int value: 'eighty'"),
        (["--log-level", "verbose"], "argument --log-level: invalid choice: 'verbose'"),
        (["--config"], "argument --config: expected one argument"),
    ],
)
def test_bad_flags_are_argparse_s_one_line(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(argv, capsys)
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"cijob-operator: error: {error}")
    assert all(line.startswith(("usage:", " ")) for line in err.splitlines()[:-1])


def test_the_command_exits_2_with_one_line(tmp_path: Path) -> None:
    """As a process: no traceback, nothing on stdout, exit status 2."""
    path = tmp_path / "config.yaml"
    path.write_text("workers: 4\nworkres: 8\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    done = subprocess.run(
        [sys.executable, "-m", "cijob.main", "--config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"cijob-operator: {path}: workres: unknown key\n"
