"""The converter's output is what the API server accepts: the CRD schema, its CEL rules and the
admission policy, on the real control plane."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from cijob.cli.convert import dump
from cijob.gitlab.convert import convert

pytestmark = pytest.mark.cluster

GITLAB_CI = """\
include:
  - local: ci/templates.yml
default:
  image: ruby:2.6
  services:
    - postgres:11.7
  before_script: [bundle install]
  retry: {max: 2, when: [runner_system_failure, stuck_or_timeout_failure]}
  timeout: 1h 30m
variables:
  RAILS_ENV: test
  DEPLOY:
    value: staging
    description: where to
stages: [build, test, deploy]
"Unit Tests: Ruby 3.3":
  extends: [.ruby, .db]
  script:
    - !reference [.snippets, setup]
    - bundle exec rake spec
  artifacts: {paths: [coverage/]}
sql:
  image:
    name: super/sql:experimental
    entrypoint: [""]
    pull_policy: [if-not-present, always]
  script: [super-sql --version]
shell-entrypoint:
  image: {name: "super/sql:experimental", entrypoint: ["/bin/sh", "-c"]}
  script: [super-sql --version]
pinned:
  stage: build
  image: ruby:2.6.8@sha256:d1dbaf9665fe8b2175198e49438092fdbcf4d8934200942b94425301b17853c7
  retry: 1
  timeout: 3 hours 20 minutes
  script: [ruby --version]
private:
  stage: deploy
  image: registry.example.com:5000/namespace/image:tag
  script: [./run-tests.sh]
"""
TEMPLATES = """\
.ruby:
  image: {name: "ruby:3.3", pull_policy: if-not-present}
.db:
  services:
    - name: my-postgres:11.7
      alias: db-postgres, db
      entrypoint: ["/usr/local/bin/db-postgres"]
      command: ["start"]
      variables: {POSTGRES_DB: test}
      pull_policy: never
    - redis:latest
.snippets:
  setup: [echo setting up]
"""


def test_converted_jobs_pass_the_crd_and_admission_policy(
    kubeconfig: Path, namespace: str, crds: list[str], tmp_path: Path
) -> None:
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "templates.yml").write_text(textwrap.dedent(TEMPLATES))
    main = tmp_path / ".gitlab-ci.yml"
    main.write_text(GITLAB_CI)
    result = convert(main)
    assert len(result.manifests) == 5
    kubectl = str(Path(__file__).resolve().parents[2] / ".cluster" / "bin" / "kubectl")
    proc = subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            str(kubeconfig),
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            "-o",
            "yaml",
        ],
        input=dump(result.manifests),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    stored = yaml.safe_load(proc.stdout)["items"]
    assert [o["metadata"]["name"] for o in stored] == [
        m["metadata"]["name"] for m in result.manifests
    ]
    # what was stored is what was converted, field by field
    for obj, manifest in zip(stored, result.manifests, strict=True):
        assert obj["spec"] == manifest["spec"]
        assert (
            obj["metadata"]["annotations"]["cijob.dev/gitlab-job"]
            == manifest["metadata"]["annotations"]["cijob.dev/gitlab-job"]
        )
