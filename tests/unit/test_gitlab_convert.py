"""The converter over GitLab's documented examples (fixtures written from the CI/CD YAML
reference) and the seed's: each CiJob asserted field by field."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from cijob.gitlab.convert import Result, convert
from cijob.gitlab.errors import ConvertError

Json = dict[str, Any]


def run(
    tmp_path: Path, text: str, files: dict[str, str] | None = None, jobs: list[str] | None = None
) -> Result:
    for rel, content in (files or {}).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(content))
    main = tmp_path / ".gitlab-ci.yml"
    main.write_text(textwrap.dedent(text))
    return convert(main, jobs, name=".gitlab-ci.yml")


def specs(result: Result) -> dict[str, Json]:
    return {
        m["metadata"]["annotations"]["cijob.dev/gitlab-job"]: m["spec"] for m in result.manifests
    }


def messages(result: Result) -> list[str]:
    return [str(w) for w in result.warnings]


def error(
    tmp_path: Path, text: str, files: dict[str, str] | None = None, jobs: list[str] | None = None
) -> str:
    with pytest.raises(ConvertError) as exc:
        run(tmp_path, text, files, jobs)
    return str(exc.value)


SEED_DEFAULT = """\
default:
  image: ruby:2.6
  services:
    - postgres:11.7
  before_script:
    - bundle install

test:
  script:
    - bundle exec rake spec
"""


def test_seed_default_image_services_before_script(tmp_path: Path) -> None:
    result = run(tmp_path, SEED_DEFAULT)
    assert result.warnings == []
    [m] = result.manifests
    assert m["apiVersion"] == "cijob.dev/v1alpha1" and m["kind"] == "CiJob"
    assert m["metadata"] == {"name": "test", "annotations": {"cijob.dev/gitlab-job": "test"}}
    assert m["spec"] == {
        "image": "ruby:2.6",
        "services": ["postgres:11.7"],
        "beforeScript": ["bundle install"],
        "script": ["bundle exec rake spec"],
    }


def test_seed_map_forms_equal_string_forms(tmp_path: Path) -> None:
    strings = run(
        tmp_path,
        """\
        image: "registry.example.com/my/image:latest"
        services:
          - postgresql:14.3
          - redis:latest
        job: {script: [x]}
        """,
    )
    maps = run(
        tmp_path,
        """\
        image:
          name: "registry.example.com/my/image:latest"
        services:
          - name: postgresql:14.3
          - name: redis:latest
        job: {script: [x]}
        """,
    )
    assert (
        specs(strings)
        == specs(maps)
        == {
            "job": {
                "image": "registry.example.com/my/image:latest",
                "services": ["postgresql:14.3", "redis:latest"],
                "script": ["x"],
            }
        }
    )


@pytest.mark.parametrize("entrypoint", [[""], ["/bin/sh", "-c"]])
def test_seed_entrypoint_overrides(tmp_path: Path, entrypoint: list[str]) -> None:
    ep = "[" + ", ".join(f'"{e}"' for e in entrypoint) + "]"
    result = run(
        tmp_path,
        f"""\
        image:
          name: super/sql:experimental
          entrypoint: {ep}
        sql: {{script: [super-sql --version]}}
        """,
    )
    assert specs(result)["sql"]["image"] == {
        "name": "super/sql:experimental",
        "entrypoint": entrypoint,
    }


def test_seed_digest_and_private_registry_images_pass_through(tmp_path: Path) -> None:
    digest = "ruby:2.6.8@sha256:d1dbaf9665fe8b2175198e49438092fdbcf4d8934200942b94425301b17853c7"
    result = run(
        tmp_path,
        f"""\
        pinned: {{image: "{digest}", script: [ruby --version]}}
        private: {{image: registry.example.com:5000/namespace/image:tag, script: [./run-tests.sh]}}
        """,
    )
    s = specs(result)
    assert s["pinned"]["image"] == digest
    assert s["private"]["image"] == "registry.example.com:5000/namespace/image:tag"


def test_seed_custom_runner_image_job(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        variables:
          DOCKER_DRIVER: overlay2
          IMAGE_NAME: $CI_REGISTRY_IMAGE:$CI_COMMIT_REF_NAME
          GITLAB_RUNNER_VERSION: v16.4.0
          AWS_CLI_VERSION: 2.13.21

        stages:
          - build

        build-image:
          stage: build
          script:
            - docker build -t ${IMAGE_NAME} .
            - docker push ${IMAGE_NAME}
          rules:
            - changes:
                - Dockerfile
        """,
    )
    s = specs(result)["build-image"]
    assert s["variables"] == {
        "DOCKER_DRIVER": "overlay2",
        "IMAGE_NAME": "$CI_REGISTRY_IMAGE:$CI_COMMIT_REF_NAME",
        "GITLAB_RUNNER_VERSION": "v16.4.0",
        "AWS_CLI_VERSION": "2.13.21",
    }
    assert s["script"] == ["docker build -t ${IMAGE_NAME} .", "docker push ${IMAGE_NAME}"]
    assert "image" not in s  # the operator's defaults.image, as the runner's --docker-image
    msgs = messages(result)
    assert ".gitlab-ci.yml:15: warning: job 'build-image': rules is not carried out" in msgs[0]
    # the CiJob expands IMAGE_NAME's references itself, as GitLab does
    assert not any("IMAGE_NAME" in m for m in msgs), msgs


def test_extends_single_parent(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        .tests:
          stage: test
          image: ruby:3.0

        rspec:
          extends: .tests
          script: rake rspec
        """,
    )
    assert specs(result) == {"rspec": {"image": "ruby:3.0", "script": ["rake rspec"]}}


def test_extends_several_levels_and_hidden_jobs_are_not_output(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        .tests:
          rules:
            - if: $CI_PIPELINE_SOURCE == "push"

        .rspec:
          extends: .tests
          script: rake rspec

        rspec 1:
          variables:
            RSPEC_SUITE: '1'
          extends: .rspec

        rspec 2:
          variables:
            RSPEC_SUITE: '2'
          extends: .rspec

        spinach:
          extends: .tests
          script: rake spinach
        """,
    )
    s = specs(result)
    assert list(s) == ["rspec 1", "rspec 2", "spinach"]
    assert s["rspec 1"] == {"variables": {"RSPEC_SUITE": "1"}, "script": ["rake rspec"]}
    assert s["rspec 2"]["variables"] == {"RSPEC_SUITE": "2"}
    # the inherited rules are warned about, once per job, at the line they were written
    rules = [m for m in messages(result) if "rules is not carried out" in m]
    assert len(rules) == 3 and all(m.startswith(".gitlab-ci.yml:2:") for m in rules), rules


def test_extends_merge_hashes_deep_arrays_replaced_last_parent_wins(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        .only-important:
          variables:
            URL: "http://my-url.internal"
            IMPORTANT_VAR: "the details"
          rules:
            - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
            - if: $CI_COMMIT_BRANCH == "stable"
          tags:
            - production
          script:
            - echo "Hello world!"

        .in-docker:
          variables:
            URL: "http://docker-url.internal"
          tags:
            - docker
          image: alpine

        rspec:
          variables:
            GITLAB: "is-awesome"
          extends:
            - .only-important
            - .in-docker
          script:
            - rake rspec
        """,
    )
    s = specs(result)["rspec"]
    assert s == {
        "image": "alpine",
        "variables": {
            "URL": "http://docker-url.internal",
            "IMPORTANT_VAR": "the details",
            "GITLAB": "is-awesome",
        },
        "script": ["rake rspec"],
    }
    tags = [m for m in messages(result) if "tags is not carried out" in m]
    assert tags and tags[0].startswith(".gitlab-ci.yml:16:"), tags  # .in-docker's tags won


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        .job_template: &job_configuration
          image: ruby:2.6
          services:
            - postgres
            - redis

        test1:
          <<: *job_configuration
          script:
            - test1 project

        .some-script-before: &some-script-before
          - echo "Execute this script first"
        .some-script: &some-script
          - echo "Execute this script second"
          - echo "Execute this script too"
        job_name:
          before_script:
            - *some-script-before
          script:
            - *some-script
            - echo "Execute something, for this job only"
        """,
    )
    s = specs(result)
    assert s["test1"] == {
        "image": "ruby:2.6",
        "services": ["postgres", "redis"],
        "script": ["test1 project"],
    }
    assert s["job_name"] == {
        "beforeScript": ['echo "Execute this script first"'],
        "script": [
            'echo "Execute this script second"',
            'echo "Execute this script too"',
            'echo "Execute something, for this job only"',
        ],
    }


def test_reference_tags_scripts_nested_and_variables(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        .setup:
          script:
            - echo creating environment
        .teardown:
          after_script:
            - echo deleting environment
        test:
          script:
            - !reference [.setup, script]
            - echo running my own command
          after_script:
            - !reference [.teardown, after_script]

        .snippets:
          one:
            - echo "ONE!"
          two:
            - !reference [.snippets, one]
            - echo "TWO!"
          three:
            - !reference [.snippets, two]
            - echo "THREE!"
        nested-references:
          script:
            - !reference [.snippets, three]

        .vars:
          variables:
            URL: "http://my-url.internal"
            IMPORTANT_VAR: "the details"
        test-vars-1:
          variables: !reference [.vars, variables]
          script: printenv
        test-vars-2:
          variables:
            MY_VAR: !reference [.vars, variables, IMPORTANT_VAR]
          script: printenv
        """,
    )
    s = specs(result)
    assert s["test"] == {
        "script": ["echo creating environment", "echo running my own command"],
        "afterScript": ["echo deleting environment"],
    }
    assert s["nested-references"]["script"] == ['echo "ONE!"', 'echo "TWO!"', 'echo "THREE!"']
    assert s["test-vars-1"]["variables"] == {
        "URL": "http://my-url.internal",
        "IMPORTANT_VAR": "the details",
    }
    assert s["test-vars-2"]["variables"] == {"MY_VAR": "the details"}


def test_reference_after_extends_sees_the_merged_job(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        .base: {script: [echo base]}
        .child: {extends: .base}
        job:
          script:
            - !reference [.child, script]
            - echo mine
        """,
    )
    assert specs(result)["job"]["script"] == ["echo base", "echo mine"]


def test_include_local_forms_globs_and_override(tmp_path: Path) -> None:
    files = {
        "templates/.gitlab-ci-template.yml": """\
            variables: {FROM_TEMPLATE: "yes", OVERRIDE: template}
            .template: {image: alpine:3.20}
            """,
        "ci/one.yml": "one: {extends: .template, script: [echo one]}\n",
        "ci/two.yaml": "two: {script: [echo two], image: busybox}\n",
        "configs/a.yml": "a: {script: [echo a]}\n",
        "configs/sub/b.yml": "b: {script: [echo b]}\n",
        "nested/outer.yml": "include: {local: nested/inner.yml}\nouter: {script: [echo outer]}\n",
        "nested/inner.yml": "inner: {script: [echo inner]}\n",
    }
    result = run(
        tmp_path,
        """\
        include:
          - '/templates/.gitlab-ci-template.yml'
          - local: ci/one.yml
          - ci/two.yaml
          - configs/**.yml
          - nested/outer.yml
        variables: {OVERRIDE: main}
        two: {image: ruby:3.3}
        """,
        files,
    )
    s = specs(result)
    assert set(s) == {"one", "two", "a", "b", "outer", "inner"}
    assert s["one"]["image"] == "alpine:3.20"
    assert s["one"]["variables"] == {"FROM_TEMPLATE": "yes", "OVERRIDE": "main"}
    # the including file's keys win, deep-merged into the included job
    assert s["two"]["image"] == "ruby:3.3" and s["two"]["script"] == ["echo two"]


def test_include_glob_star_stays_in_its_directory(tmp_path: Path) -> None:
    files = {"configs/a.yml": "a: {script: [x]}\n", "configs/sub/b.yml": "b: {script: [x]}\n"}
    assert set(specs(run(tmp_path, "include: 'configs/*.yml'\n", files))) == {"a"}
    assert set(specs(run(tmp_path, "include: 'configs/**/*.yml'\n", files))) == {"b"}


def test_include_remote_is_warned_not_fetched(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        include:
          - remote: 'https://gitlab.com/example-project/-/raw/main/.gitlab-ci.yml'
          - template: Auto-DevOps.gitlab-ci.yml
        job: {script: [x]}
        """,
    )
    assert [m.split(": warning: ")[0] for m in messages(result)] == [
        ".gitlab-ci.yml:2",
        ".gitlab-ci.yml:3",
    ]
    assert all("not fetched" in m for m in messages(result))


def test_default_and_inherit(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        default:
          image: 'ruby:2.4'
          before_script:
            - echo Hello World

        variables:
          DOMAIN: example.com
          WEBHOOK_URL: https://my-webhook.example.com

        rubocop:
          inherit:
            default: false
            variables: false
          script: bundle exec rubocop

        rspec:
          inherit:
            default: [image]
            variables: [WEBHOOK_URL]
          script: bundle exec rspec

        capybara:
          inherit:
            variables: false
          script: bundle exec capybara

        karma:
          inherit:
            default: true
            variables: [DOMAIN]
          script: karma
        """,
    )
    s = specs(result)
    assert s["rubocop"] == {"script": ["bundle exec rubocop"]}
    assert s["rspec"] == {
        "image": "ruby:2.4",
        "variables": {"WEBHOOK_URL": "https://my-webhook.example.com"},
        "script": ["bundle exec rspec"],
    }
    assert s["capybara"] == {
        "image": "ruby:2.4",
        "beforeScript": ["echo Hello World"],
        "script": ["bundle exec capybara"],
    }
    assert s["karma"]["variables"] == {"DOMAIN": "example.com"}


def test_job_keywords_replace_defaults_and_deprecated_globals_apply(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        image: ruby:3.0
        before_script: [echo global]
        default:
          retry: 2
          timeout: 30 minutes
          services: [postgres:16]
        job:
          services: [redis:7]
          retry: {max: 1, when: script_failure}
          script: [rake]
        """,
    )
    assert specs(result)["job"] == {
        "image": "ruby:3.0",
        "services": ["redis:7"],
        "beforeScript": ["echo global"],
        "script": ["rake"],
        "timeout": "30m",
        "retry": {"max": 1, "when": ["ScriptFailure", "OOMKilled"]},
    }


def test_variables_forms_and_job_wins(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        variables:
          DEPLOY_ENVIRONMENT:
            value: "staging"
            options: ["production", "staging", "canary"]
            description: "The deployment target."
          PORT: 5432
          RATIO: 1.5
          SHARED: global
          LITERAL:
            value: "$NOT_EXPANDED"
            expand: false
        job:
          variables:
            SHARED: job
          script: [env]
        """,
    )
    assert specs(result)["job"]["variables"] == {
        "DEPLOY_ENVIRONMENT": "staging",
        "PORT": "5432",
        "RATIO": "1.5",
        "SHARED": "job",
        "LITERAL": "$$NOT_EXPANDED",  # the CiJob expands; `$$` is its literal `$`
    }
    assert result.warnings == []


def test_git_variables_without_a_checkout_are_warned_about(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        variables: {GIT_DEPTH: 10}
        job:
          variables: {GIT_SUBMODULE_STRATEGY: recursive}
          script: [x]
        none:
          variables: {GIT_STRATEGY: none}
          script: [x]
        """,
    )
    msgs = messages(result)
    assert len(msgs) == 2 and all("no repository to clone" in m for m in msgs), msgs
    assert any(m.startswith(".gitlab-ci.yml:1:") and "GIT_DEPTH" in m for m in msgs), msgs
    assert "source" not in specs(result)["job"]
    assert specs(result)["none"]["variables"]["GIT_STRATEGY"] == "none"


CHECKOUT = {"url": "https://git.example.com/g/p.git", "commit": "a" * 40, "ref": "main"}


def test_git_variables_map_onto_spec_source(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text(
        textwrap.dedent(
            """\
            variables: {GIT_DEPTH: "3"}
            plain: {script: [x]}
            deep:
              variables: {GIT_DEPTH: "0", GIT_SUBMODULE_STRATEGY: normal, GIT_STRATEGY: fetch}
              script: [x]
            skip:
              variables: {GIT_STRATEGY: none}
              script: [x]
            bad:
              variables: {GIT_DEPTH: lots, GIT_SUBMODULE_STRATEGY: all}
              script: [x]
            """
        )
    )
    result = convert(tmp_path / ".gitlab-ci.yml", checkout=CHECKOUT, name=".gitlab-ci.yml")
    got = specs(result)
    assert got["plain"]["source"] == {"git": {**CHECKOUT, "depth": 3}}
    assert got["deep"]["source"] == {"git": {**CHECKOUT, "depth": 0, "submodules": "normal"}}
    assert "source" not in got["skip"]
    assert got["bad"]["source"] == {"git": CHECKOUT}
    msgs = messages(result)
    assert len(msgs) == 2 and all(m.startswith(".gitlab-ci.yml:10:") for m in msgs), msgs


def test_stages_order_the_output(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        stages: [build, test, deploy]
        ship: {stage: deploy, script: [x]}
        unit: {script: [x]}
        compile: {stage: build, script: [x]}
        lint: {stage: .pre, script: [x]}
        """,
    )
    assert list(specs(result)) == ["lint", "compile", "unit", "ship"]


def test_services_map_form_with_every_key(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        job:
          image: {name: ruby:3.3, pull_policy: if-not-present}
          services:
            - name: my-postgres:11.7
              alias: db-postgres, db
              entrypoint: ["/usr/local/bin/db-postgres"]
              command: ["start"]
              pull_policy: [always, if-not-present]
              variables: {POSTGRES_PASSWORD: secret, MAX: 10}
          script: [x]
        """,
    )
    s = specs(result)["job"]
    assert s["image"] == {"name": "ruby:3.3", "pullPolicy": "if-not-present"}
    assert s["services"] == [
        {
            "name": "my-postgres:11.7",
            "alias": "db-postgres, db",
            "entrypoint": ["/usr/local/bin/db-postgres"],
            "command": ["start"],
            "variables": {"POSTGRES_PASSWORD": "secret", "MAX": "10"},
            "pullPolicy": "always",
        }
    ]
    [w] = messages(result)
    assert w.startswith(".gitlab-ci.yml:8:") and "takes one policy, 'always'" in w


def test_image_names_expand_the_files_variables(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        variables: {RUBY: "3.3"}
        job: {image: "ruby:${RUBY}", script: [x]}
        other: {image: "$CI_REGISTRY_IMAGE/app", script: [x]}
        """,
    )
    assert specs(result)["job"]["image"] == "ruby:3.3"
    assert any("CI_* variables are GitLab's" in m for m in messages(result))


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        ("2", {"max": 2}),
        ("{max: 2}", {"max": 2}),
        ("{max: 2, when: always}", {"max": 2}),
        (
            "{max: 1, when: runner_system_failure}",
            {"max": 1, "when": ["PodEvicted", "PodDeleted", "ImagePullFailed", "ServiceNotReady"]},
        ),
        (
            "{max: 2, when: [stuck_or_timeout_failure, job_execution_timeout, unknown_failure]}",
            {"max": 2, "when": ["Timeout", "PodDeleted"]},
        ),
    ],
)
def test_retry_forms(tmp_path: Path, retry: str, expected: Json) -> None:
    result = run(tmp_path, f"job: {{script: [x], retry: {retry}}}\n")
    assert specs(result)["job"]["retry"] == expected
    assert result.warnings == []


def test_retry_exit_codes_and_unmapped_failure_types_warn(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        a:
          script: [x]
          retry:
            max: 2
            exit_codes: [137, 255]
        b:
          script: [x]
          retry: {max: 1, when: [script_failure, api_failure]}
        c:
          script: [x]
          retry: {max: 1, when: [api_failure]}
        """,
    )
    s = specs(result)
    # retry:exit_codes is carried as GitLab has it: no when, only those codes retry
    assert s["a"]["retry"] == {"max": 2, "exitCodes": [137, 255]}
    assert s["b"]["retry"] == {"max": 1, "when": ["ScriptFailure", "OOMKilled"]}
    assert "retry" not in s["c"]
    msgs = messages(result)
    assert msgs[0].startswith(".gitlab-ci.yml:8:") and "api_failure" in msgs[0]
    assert len(msgs) == 3 and not any("exit_codes" in m for m in msgs)


@pytest.mark.parametrize(
    ("retry", "message"),
    [("3", "max must be 0, 1 or 2"), ("{max: 1, when: sometimes}", "unknown failure type")],
)
def test_retry_refused(tmp_path: Path, retry: str, message: str) -> None:
    assert message in error(tmp_path, f"job:\n  script: [x]\n  retry: {retry}\n")


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        ("1h 30m", "1h30m"),
        ("3 hours 20 minutes", "3h20m"),
        ("2h20min", "2h20m"),
        ("90 minutes", "1h30m"),
        ("1 day", "24h"),
        ("3600", "1h"),
        ("1.5h", "1h30m"),
        ("6 mins 1 sec", "6m1s"),
        ("1h, 10m and 5s", "1h10m5s"),
    ],
)
def test_timeout_human_forms(tmp_path: Path, timeout: str, expected: str) -> None:
    result = run(tmp_path, f"job: {{script: [x], timeout: '{timeout}'}}\n")
    assert specs(result)["job"]["timeout"] == expected


def test_job_names_become_object_names_with_the_original_annotated(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        "Test: Ruby 3.3/Unit": {script: [x]}
        ok-name: {script: [x]}
        """,
    )
    first, second = result.manifests
    assert first["metadata"]["annotations"] == {"cijob.dev/gitlab-job": "Test: Ruby 3.3/Unit"}
    name = first["metadata"]["name"]
    assert name.startswith("test-ruby-3-3-unit-") and len(name) <= 60
    assert second["metadata"]["name"] == "ok-name"


def test_every_not_carried_key_warns_once_per_job_with_its_line(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
        job:
          script: [x]
          artifacts: {paths: [out/]}
          cache: {paths: [vendor/]}
          needs: []
          only: [main]
          except: [tags]
          environment: production
          parallel: 3
          when: manual
          frobnicate: true
        trig:
          trigger: other/project
        """,
    )
    lines = [m.split(": warning: ")[0] for m in messages(result)]
    assert lines == [f".gitlab-ci.yml:{n}" for n in (3, 4, 5, 6, 7, 8, 9, 10, 11, 13)]
    assert "frobnicate is not a GitLab job keyword" in messages(result)[8]
    assert [m["metadata"]["name"] for m in result.manifests] == ["job"]


def test_selected_jobs_only(tmp_path: Path) -> None:
    result = run(tmp_path, "a: {script: [x]}\nb: {script: [y]}\n", jobs=["b"])
    assert list(specs(result)) == ["b"]


@pytest.mark.parametrize(
    ("text", "files", "jobs", "expected"),
    [
        ("job:\n  script: [x\n", {}, None, ".gitlab-ci.yml:3: error: YAML:"),
        ("a: {script: [x]}\n", {}, ["nope"], "no job 'nope' (jobs: a)"),
        (".hidden: {script: [x]}\n", {}, [".hidden"], "'.hidden' is not a job"),
        (
            "include: missing.yml\n",
            {},
            None,
            ".gitlab-ci.yml:1: error: include: local file 'missing.yml' not found",
        ),
        (
            "include: ['ok.yml', 'none/*.yml']\n",
            {"ok.yml": "a: {script: [x]}\n"},
            None,
            ".gitlab-ci.yml:1: error: include: no file matches 'none/*.yml'",
        ),
        (
            "a:\n  extends: b\n  script: [x]\nb:\n  extends: a\n",
            {},
            None,
            ".gitlab-ci.yml:2: error: a: circular dependency in extends (a -> b -> a)",
        ),
        (
            "a:\n  extends: .nope\n  script: [x]\n",
            {},
            None,
            ".gitlab-ci.yml:2: error: a: extends unknown key '.nope'",
        ),
        (
            "a:\n  script:\n    - !reference [.setup, script]\n",
            {},
            None,
            ".gitlab-ci.yml:3: error: !reference [.setup, script] points to nothing",
        ),
        (
            ".s: {x: 1}\na:\n  script: !reference [.s, script]\n",
            {},
            None,
            ".gitlab-ci.yml:3: error: !reference [.s, script] points to nothing: [.s] has no",
        ),
        ("a: {stage: nowhere, script: [x]}\n", {}, None, "stage 'nowhere' is not in stages"),
        ("a: {image: ruby}\n", {}, None, ".gitlab-ci.yml:1: error: job 'a': no script"),
        ("a: {script: [x], timeout: soon}\n", {}, None, "timeout: cannot read 'soon'"),
        (
            "include: other.yml\n",
            {"other.yml": "a: {script: [x]\n"},
            None,
            "other.yml:2: error: YAML:",
        ),
        (
            "a:\n  image: Ruby:2.6\n  script: [x]\n",
            {},
            None,
            ".gitlab-ci.yml:2: error: job 'a': image:",
        ),
        (
            "a:\n  services:\n    - name: pg\n      alias: Bad_Alias\n  script: [x]\n",
            {},
            None,
            ".gitlab-ci.yml:4: error: job 'a': services: alias 'Bad_Alias'",
        ),
        (".t: {script: [x]}\nvariables: {A: b}\n", {}, None, ".gitlab-ci.yml:1: error: no jobs"),
    ],
    ids=[
        "yaml",
        "unknown-job",
        "hidden-job",
        "missing-include",
        "glob-no-match",
        "cycle",
        "unknown-parent",
        "reference-nothing",
        "reference-key",
        "stage",
        "no-script",
        "timeout",
        "yaml-in-include",
        "image-reference",
        "alias",
        "no-jobs",
    ],
)
def test_bad_input_is_one_message_with_file_and_line(
    tmp_path: Path, text: str, files: dict[str, str], jobs: list[str] | None, expected: str
) -> None:
    assert expected in error(tmp_path, text, files, jobs)


def test_extends_depth_limit_is_gitlabs(tmp_path: Path) -> None:
    def chain(levels: int) -> str:
        text = "job:\n  extends: .l1\n  script: [x]\n"
        for i in range(1, levels):
            text += f".l{i}:\n  extends: .l{i + 1}\n"
        return text + f".l{levels}: {{image: alpine}}\n"

    assert specs(run(tmp_path, chain(11)))["job"]["image"] == "alpine"
    assert "extends nested too deep" in error(tmp_path, chain(12))


def test_a_global_overridden_by_default_is_warned_once(tmp_path: Path) -> None:
    result = run(
        tmp_path, "image: ruby:2\ndefault: {image: ruby:3}\na: {script: [x]}\nb: {script: [y]}\n"
    )
    assert messages(result) == [
        ".gitlab-ci.yml:1: warning: top-level image is overridden by default:image"
    ]
    assert {s["image"] for s in specs(result).values()} == {"ruby:3"}


def test_include_paths_start_at_the_checkouts_root(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "ci").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "jobs.yml").write_text("lint: {script: [x]}\n")
    main = tmp_path / "ci" / "pipeline.yml"
    main.write_text("include: templates/jobs.yml\n")
    assert [m["metadata"]["name"] for m in convert(main).manifests] == ["lint"]
