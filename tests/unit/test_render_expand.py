"""GitLab's variable expansion (docs/variables.md) and the predefined variables in the pod."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cijob.api.spec import CiJobSpec
from cijob.config import OperatorConfig
from cijob.errors import InvalidSpec
from cijob.job import Job
from cijob.render.expand import Expander
from cijob.render.pod import get_pod


def job(**spec: Any) -> Job:
    return Job(
        "rspec",
        "team-a",
        "uid-1",
        1,
        CiJobSpec.model_validate({"image": "ruby:2.6", "script": ["x"], **spec}),
    )


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# GitLab's documented cases: a variable in another ($ and ${}), `$$` for a literal `$`,
# a variable nobody set expands to nothing, nested references resolve in any order.
@pytest.mark.parametrize(
    ("variables", "text", "plain"),
    [
        ({"DB": "test"}, "postgres://db/$DB", "postgres://db/test"),
        ({"DB": "test"}, "postgres://db/${DB}_x", "postgres://db/test_x"),
        ({"DB": "test"}, "cost: $$DB", "cost: $DB"),
        ({}, "a$NOBODY-b", "a-b"),
        ({"A": "$B/a", "B": "${C}b", "C": "c"}, "$A", "cb/a"),
        ({"V": "1"}, "$V$V ${V}", "11 1"),
        ({"V": "1"}, "price $ 5", "price $ 5"),
        ({"V": "1"}, "$1 $*", "$1 $*"),
    ],
)
def test_gitlab_expansion_rules(variables: dict[str, str], text: str, plain: str) -> None:
    assert Expander(variables).plain(text) == plain


def test_env_values_keep_the_kubelets_expansion_out() -> None:
    e = Expander({"DB": "test", "CMD": "$(date) $$HOME"}, runtime=["TOKEN"])
    # a literal `$` is `$$` for the kubelet; a runtime variable is the kubelet's `$(NAME)`
    assert e.env_value("$CMD") == "$$(date) $$HOME"
    assert e.env_value("u:$TOKEN@db/$DB") == "u:$(TOKEN)@db/test"


def test_a_circle_of_variables_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="circle: A -> B -> A"):
        Expander({"A": "$B", "B": "$A"}).plain("$A")


def test_a_runtime_variable_cannot_name_an_image() -> None:
    with pytest.raises(InvalidSpec, match="known only once the pod runs"):
        Expander({}, runtime=["CI_JOB_ID"]).plain("img:$CI_JOB_ID")


def test_image_and_service_names_are_expanded_and_checked() -> None:
    pod = get_pod(
        job(
            image="ruby:${RUBY}",
            services=[{"name": "$REG/postgres:$PG", "alias": "db"}],
            variables={"RUBY": "2.6", "REG": "registry.example.com", "PG": "11.7"},
        ),
        1,
        OperatorConfig(),
    )
    build = pod["spec"]["containers"][0]
    assert build["image"] == "ruby:2.6"
    assert env_of(build)["CI_JOB_IMAGE"] == "ruby:2.6"
    assert pod["spec"]["initContainers"][0]["image"] == "registry.example.com/postgres:11.7"
    # the derived host name is the expanded name's
    assert "registry.example.com-postgres" in pod["spec"]["hostAliases"][0]["hostnames"]
    with pytest.raises(InvalidSpec, match=r"spec\.image"):
        get_pod(job(image="Ruby:$X", variables={"X": "1"}), 1, OperatorConfig())


def test_variables_refer_to_each_other_and_to_predefined_ones() -> None:
    pod = get_pod(
        job(
            variables={
                "POSTGRES_DB": "test",
                "DATABASE_URL": "postgres://postgres@postgres/${POSTGRES_DB}",
                "WHO": "$CI_JOB_NAME in $CI_PROJECT_DIR",
                "RUN": "run-$CI_JOB_ID",
                "RAW": "$$NOT",
            }
        ),
        1,
        OperatorConfig(),
    )
    env = env_of(pod["spec"]["containers"][0])
    assert env["DATABASE_URL"] == "postgres://postgres@postgres/test"
    assert env["WHO"] == "rspec in /builds/team-a/rspec"
    assert env["RUN"] == "run-$(CI_JOB_ID)"  # the kubelet expands it from the downward API
    assert env["RAW"] == "$$NOT"  # the kubelet gives the shell `$NOT`


def test_the_predefined_variables() -> None:
    started = datetime(2026, 1, 31, 16, 47, 55, tzinfo=UTC)
    pod = get_pod(job(timeout="1h30m"), 2, OperatorConfig(), started_at=started)
    build = pod["spec"]["containers"][0]
    env = env_of(build)
    assert env["CI"] == "true" and env["CI_SERVER"] == "yes"
    assert env["CI_JOB_NAME"] == "rspec"
    assert env["CI_JOB_TIMEOUT"] == "5400"
    assert env["CI_JOB_STARTED_AT"] == "2026-01-31T16:47:55Z"
    assert env["CI_JOB_ID"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    # CI_JOB_ID comes before the values that may refer to it
    names = [e["name"] for e in build["env"]]
    assert names.index("CI_JOB_ID") < names.index("CI")
    # without a start time (a preview), no CI_JOB_STARTED_AT
    assert "CI_JOB_STARTED_AT" not in env_of(
        get_pod(job(), 1, OperatorConfig())["spec"]["containers"][0]
    )


def test_secret_variables_are_runtime_references() -> None:
    spec = {
        "variablesFrom": [
            {"secretKeyRef": {"name": "s", "key": "k"}, "variable": "TOKEN"},
            {"secretRef": {"name": "more"}},
        ],
        "variables": {"URL": "https://$TOKEN@host/$FROM_SECRET"},
    }
    env = env_of(get_pod(job(**spec), 1, OperatorConfig())["spec"]["containers"][0])
    # TOKEN is a secretKeyRef; FROM_SECRET may be a key of the whole Secret: the kubelet knows
    assert env["URL"] == "https://$(TOKEN)@host/$(FROM_SECRET)"
