"""The seed's jobs written as `.gitlab-ci.yml` convert to the CiJobs of examples/."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from cijob.gitlab.convert import convert

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# example file -> (the job in GitLab's words, fields of the example the file cannot say)
GITLAB_FORMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "rspec.yaml": (
        """\
        default:
          image: ruby:2.6
          services:
            - postgres:11.7
          before_script:
            - bundle install
        variables:
          RAILS_ENV: test
          DATABASE_URL: postgres://postgres@postgres:5432/test
        rspec:
          script:
            - bundle exec rake spec
          after_script:
            - echo "done with $CI_JOB_NAME"
        """,
        (),
    ),
    "map-form.yaml": (
        """\
        map-form:
          image:
            name: registry.example.com/my/image:latest
          services:
            - name: postgresql:14.3
              alias: db
            - name: redis:latest
              alias: cache, kv
          script:
            - redis-cli -h cache ping
            - psql -h db -c 'select 1'
        """,
        (),
    ),
    "pinned-digest.yaml": (
        """\
        pinned-digest:
          image: ruby:2.6.8@sha256:d1dbaf9665fe8b2175198e49438092fdbcf4d8934200942b94425301b17853c7
          script: [ruby --version]
        """,
        ("retry",),
    ),
    "super-sql-empty-entrypoint.yaml": (
        """\
        super-sql-empty:
          image:
            name: super/sql:experimental
            entrypoint: [""]
          script: [super-sql --version]
        """,
        (),
    ),
    "super-sql-shell-entrypoint.yaml": (
        """\
        super-sql-shell:
          image:
            name: super/sql:experimental
            entrypoint: ["/bin/sh", "-c"]
          script: [super-sql --version]
        """,
        (),
    ),
    "private-registry.yaml": (
        """\
        private-registry:
          image: registry.example.com:5000/namespace/image:tag
          script: [./run-tests.sh]
        """,
        ("variablesFrom",),
    ),  # a CI/CD variable of the project's settings in GitLab
}


def _normal(spec: dict[str, Any]) -> dict[str, Any]:
    """`{name: x}` alone is `x`: the two forms are the same job."""
    out = dict(spec)
    if isinstance(out.get("image"), dict) and list(out["image"]) == ["name"]:
        out["image"] = out["image"]["name"]
    return out


@pytest.mark.parametrize("example", sorted(GITLAB_FORMS))
def test_seed_job_converts_to_the_example(tmp_path: Path, example: str) -> None:
    text, unsaid = GITLAB_FORMS[example]
    docs = yaml.safe_load_all((EXAMPLES / example).read_text())
    expected = next(d for d in docs if d["kind"] == "CiJob")
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(textwrap.dedent(text))
    result = convert(path)
    assert result.warnings == []
    [m] = result.manifests
    assert m["metadata"]["name"] == expected["metadata"]["name"]
    want = {k: v for k, v in _normal(expected["spec"]).items() if k not in unsaid}
    assert m["spec"] == want


def test_every_example_has_a_gitlab_form() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(GITLAB_FORMS)
