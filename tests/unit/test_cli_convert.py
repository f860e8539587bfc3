"""`cijob convert` and `cijob render`: stdout, stderr and exit codes, without a cluster."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path

import pytest
import yaml

from cijob.cli import main
from cijob.render.pod import get_pod

REPO = Path(__file__).resolve().parents[2]
GITLAB_CI = """\
default:
  image: ruby:2.6
  services: [postgres:11.7]
  before_script: [bundle install]
test:
  script: [bundle exec rake spec]
  artifacts: {paths: [coverage/]}
lint:
  stage: build
  script: [rubocop]
"""


def _write(tmp_path: Path, text: str, name: str = ".gitlab-ci.yml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_convert_prints_one_document_per_job_in_stage_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["convert", _write(tmp_path, GITLAB_CI)]) == 0
    out, err = capsys.readouterr()
    docs = list(yaml.safe_load_all(out))
    assert [d["metadata"]["name"] for d in docs] == ["lint", "test"]
    assert out.startswith("---\n") and out.count("\n---\n") == 1
    assert "warning: job 'test': artifacts is not carried out" in err
    assert ":7: warning:" in err


def test_convert_selected_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", _write(tmp_path, GITLAB_CI), "lint"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["metadata"]["name"] for d in docs] == ["lint"]


def test_convert_strict_turns_warnings_into_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["convert", "--strict", _write(tmp_path, GITLAB_CI)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert ":7: error: job 'test': artifacts is not carried out" in err
    assert "1 error(s) under --strict" in err
    assert main(["convert", "--strict", _write(tmp_path, GITLAB_CI), "lint"]) == 0


def test_convert_bad_input_exits_non_zero_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "a:\n  script: [x]\n  extends: .missing\n")
    assert main(["convert", path]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == [
        f"cijob: {path}:3: error: a: extends unknown key '.missing'"
    ]
    assert main(["convert", str(tmp_path / "none.yml")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_render_prints_the_operators_pod(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-f", str(REPO / "examples" / "rspec.yaml"), "-n", "team-a"]) == 0
    out, err = capsys.readouterr()
    pod = yaml.safe_load(out)
    assert pod["metadata"]["name"] == "rspec-1" and pod["metadata"]["namespace"] == "team-a"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["build"]
    assert pod["spec"]["initContainers"][0]["image"] == "postgres:11.7"
    assert "pull Secret (none)" in err
    assert "only the operator knows them" in err


def test_render_equals_get_pod(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cijob.config import OperatorConfig
    from cijob.job import Job, parse_spec

    doc = yaml.safe_load((REPO / "examples" / "map-form.yaml").read_text())
    cfg = tmp_path / "config.yaml"
    cfg.write_text("allowedPullPolicies: [IfNotPresent]\n")
    assert (
        main(
            [
                "render",
                "-f",
                str(REPO / "examples" / "map-form.yaml"),
                "--config",
                str(cfg),
                "-o",
                "json",
            ]
        )
        == 0
    )
    rendered = json.loads(capsys.readouterr().out)
    job = Job("map-form", "default", "<uid: set by the API server>", 1, parse_spec(doc["spec"]))
    expected = get_pod(job, 1, OperatorConfig(allowedPullPolicies=["IfNotPresent"]))
    assert rendered == expected


def test_render_names_the_pull_secret_of_inline_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    auth = base64.b64encode(b"my_username:my_password").decode()
    config = json.dumps({"auths": {"registry.example.com:5000": {"auth": auth}}})
    job = {
        "apiVersion": "cijob.dev/v1alpha1",
        "kind": "CiJob",
        "metadata": {"name": "private"},
        "spec": {
            "image": "registry.example.com:5000/namespace/image:tag",
            "script": ["x"],
            "variables": {"DOCKER_AUTH_CONFIG": config},
        },
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    assert main(["render", "-f", str(path)]) == 0
    out, err = capsys.readouterr()
    pod = yaml.safe_load(out)
    assert pod["spec"]["imagePullSecrets"] == [{"name": "private-registry-credentials"}]
    assert "pull Secret private-registry-credentials" in err
    assert "my_password" not in out + err and auth not in out + err


def test_render_says_what_needs_the_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    path = REPO / "examples" / "private-registry.yaml"
    assert main(["render", "-f", str(path)]) == 0
    err = capsys.readouterr().err
    assert "'registry-creds' is read from the cluster by the operator" in err


def test_render_reports_what_the_operator_would_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        "apiVersion: cijob.dev/v1alpha1\nkind: CiJob\nmetadata: {name: x}\nspec: {script: [x]}\n"
    )
    assert main(["render", "-f", str(path)]) == 1
    assert "would fail with InvalidSpec: spec.image" in capsys.readouterr().err


@pytest.mark.parametrize(
    "example", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.stem
)
def test_render_every_example(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-f", str(example)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["kind"] == "Pod"


def test_convert_then_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", _write(tmp_path, GITLAB_CI), "test"]) == 0
    manifest = tmp_path / "test.yaml"
    manifest.write_text(capsys.readouterr().out)
    assert main(["render", "-f", str(manifest)]) == 0
    pod = yaml.safe_load(capsys.readouterr().out)
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["CI_JOB_NAME"] == "test" and "bundle install" in env["CIJOB_SCRIPT"]


def test_kubectl_plugin_entry_point_is_declared() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert 'kubectl-cijob = "cijob.cli:kubectl_main"' in text


def test_crd_command_writes_what_crds_holds(tmp_path: Path) -> None:
    assert main(["crd", "--output", str(tmp_path)]) == 0
    for path in sorted((REPO / "crds").glob("*.yaml")):
        assert (tmp_path / path.name).read_text() == path.read_text()


def test_convert_from_stdin_finds_includes_in_the_current_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    (tmp_path / "jobs.yml").write_text("lint: {script: [x], tags: [t]}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("include: jobs.yml\n"))
    assert main(["convert", "-"]) == 0
    out, err = capsys.readouterr()
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == ["lint"]
    assert "jobs.yml:1: warning: job 'lint': tags" in err
