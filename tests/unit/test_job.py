"""A CiJob object read into validated data; InvalidSpec names the bad field."""

from __future__ import annotations

from typing import Any

import pytest

from cijob.api.spec import ImageSpec, RetrySpec, ServiceSpec
from cijob.errors import InvalidSpec
from cijob.job import Job, job_from_body, parse_spec


def _spec(**fields: Any) -> dict[str, Any]:
    return {"script": ["echo hi"], **fields}


def _error(spec: dict[str, Any]) -> str:
    with pytest.raises(InvalidSpec) as info:
        parse_spec(spec)
    assert info.value.reason == "InvalidSpec"
    return info.value.message


# -- accepted forms --------------------------------------------------------------------------


def test_image_as_a_string() -> None:
    spec = parse_spec(_spec(image="ruby:2.6"))
    assert spec.image == "ruby:2.6"


def test_image_as_a_map() -> None:
    spec = parse_spec(
        _spec(image={"name": "super/sql:experimental", "entrypoint": [""], "pullPolicy": "always"})
    )
    assert spec.image == ImageSpec(
        name="super/sql:experimental", entrypoint=[""], pullPolicy="always"
    )


def test_image_map_with_only_a_name() -> None:
    spec = parse_spec(_spec(image={"name": "ruby:2.6"}))
    assert isinstance(spec.image, ImageSpec)
    assert spec.image.entrypoint is None
    assert spec.image.pullPolicy is None


def test_services_as_strings_and_maps() -> None:
    spec = parse_spec(
        _spec(
            services=[
                "postgres:11.7",
                {"name": "redis:latest", "alias": "cache"},
                {
                    "name": "mysql:latest",
                    "alias": "db, mysql",
                    "entrypoint": ["docker-entrypoint.sh"],
                    "command": ["--skip-grant-tables"],
                    "variables": {"MYSQL_ROOT_PASSWORD": "x"},
                    "pullPolicy": "if-not-present",
                },
            ]
        )
    )
    assert spec.services is not None
    assert spec.services[0] == "postgres:11.7"
    assert spec.services[1] == ServiceSpec(name="redis:latest", alias="cache")
    mysql = spec.services[2]
    assert isinstance(mysql, ServiceSpec)
    assert mysql.alias == "db, mysql"
    assert mysql.entrypoint == ["docker-entrypoint.sh"]
    assert mysql.command == ["--skip-grant-tables"]
    assert mysql.variables == {"MYSQL_ROOT_PASSWORD": "x"}
    assert mysql.pullPolicy == "if-not-present"


def test_the_full_example_of_the_spec() -> None:
    spec = parse_spec(
        {
            "image": "ruby:2.6",
            "services": ["postgres:11.7", {"name": "redis:latest", "alias": "cache"}],
            "variables": {"RAILS_ENV": "test"},
            "variablesFrom": [{"secretRef": {"name": "registry-creds"}}],
            "beforeScript": ["bundle install"],
            "script": ["bundle exec rake spec"],
            "afterScript": ["echo done"],
            "project": "group/project",
            "timeout": "1h",
            "retry": {"max": 2, "when": ["ScriptFailure", "PodEvicted", "ImagePullFailed"]},
            "imagePullSecrets": [{"name": "existing"}],
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [],
            "serviceAccountName": "ci",
            "cancel": False,
            "ttlSecondsAfterFinished": 3600,
        }
    )
    assert spec.retry == RetrySpec(max=2, when=["ScriptFailure", "PodEvicted", "ImagePullFailed"])
    assert spec.variablesFrom is not None
    assert spec.variablesFrom[0].secretRef is not None
    assert spec.variablesFrom[0].secretRef.name == "registry-creds"
    assert spec.resources is not None
    assert spec.resources.requests == {"cpu": "500m", "memory": "1Gi"}
    assert spec.project == "group/project"


def test_kubernetes_pull_policy_spellings_are_accepted() -> None:
    for policy in ["always", "if-not-present", "never", "Always", "IfNotPresent", "Never"]:
        spec = parse_spec(_spec(image={"name": "ruby", "pullPolicy": policy}))
        assert isinstance(spec.image, ImageSpec)
        assert spec.image.pullPolicy == policy


def test_integer_quantities_are_accepted() -> None:
    spec = parse_spec(_spec(resources={"limits": {"cpu": 2, "memory": "1Gi"}}))
    assert spec.resources is not None
    assert spec.resources.limits == {"cpu": 2, "memory": "1Gi"}


# -- errors name the field -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({}, "spec.script"),
        ({"script": []}, "spec.script"),
        ({"script": "echo hi"}, "spec.script"),
        (_spec(retry={"max": 3}), "spec.retry.max"),
        (_spec(retry={"max": -1}), "spec.retry.max"),
        (_spec(retry={"max": 1, "when": ["NoShell"]}), "spec.retry.when[0]"),
        (_spec(image=5), "spec.image"),
        (_spec(variables={"A": 1}), "spec.variables.A"),
        (_spec(variablesFrom=[{"secretRef": {}}]), "spec.variablesFrom[0].secretRef.name"),
        (_spec(tolerations=[{"operator": "Maybe"}]), "spec.tolerations[0].operator"),
        (_spec(ttlSecondsAfterFinished=-1), "spec.ttlSecondsAfterFinished"),
        (_spec(imagePullSecrets=[{"name": ""}]), "spec.imagePullSecrets[0].name"),
        (_spec(beforeScript=["ok", 3]), "spec.beforeScript[1]"),
    ],
)
def test_error_names_the_field(spec: dict[str, Any], path: str) -> None:
    assert _error(spec).startswith(path + ": ")


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        (_spec(services=["postgres", {"name": "redis", "alias": 5}]), "spec.services[1].alias"),
        (_spec(services=["postgres", {"alias": "cache"}]), "spec.services[1].name"),
        (
            _spec(services=["postgres", {"name": "redis", "command": "redis-server"}]),
            "spec.services[1].command",
        ),
        (
            _spec(services=[{"name": "redis", "variables": {"PORT": 6379}}]),
            "spec.services[0].variables.PORT",
        ),
        (_spec(image={"name": "ruby", "pullPolicy": "sometimes"}), "spec.image.pullPolicy"),
        (_spec(image={"name": "ruby", "entrypoint": "sh"}), "spec.image.entrypoint"),
        (_spec(image={"entrypoint": [""]}), "spec.image.name"),
    ],
)
def test_error_in_the_map_form_names_the_field_inside_it(spec: dict[str, Any], path: str) -> None:
    # The map form was given: the message must point into it, not say "should be a string".
    message = _error(spec)
    assert message.startswith(path + ": "), message


def test_error_in_a_quantity_names_the_field_without_union_member_names() -> None:
    message = _error(_spec(resources={"requests": {"cpu": [1]}}))
    assert message.startswith("spec.resources.requests.cpu: "), message


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        (_spec(bogus=1), "spec.bogus"),
        (_spec(retry={"max": 1, "tries": 2}), "spec.retry.tries"),
        (_spec(variablesFrom=[{"secretRef": {"name": "s", "key": "k"}}]), "spec.variablesFrom[0]"),
    ],
)
def test_unknown_fields_are_rejected(spec: dict[str, Any], path: str) -> None:
    message = _error(spec)
    assert message.startswith(path)
    assert "Extra inputs are not permitted" in message


def test_unknown_field_in_a_service_map_is_named() -> None:
    message = _error(_spec(services=["postgres", {"name": "redis", "bogus": 1}]))
    assert message.startswith("spec.services[1].bogus: "), message


def test_unknown_field_in_the_image_map_is_named() -> None:
    message = _error(_spec(image={"name": "ruby", "pull_policy": "always"}))
    assert message.startswith("spec.image.pull_policy: "), message


# -- the object ------------------------------------------------------------------------------


def test_job_from_body() -> None:
    body = {
        "apiVersion": "cijob.dev/v1alpha1",
        "kind": "CiJob",
        "metadata": {"name": "rspec", "namespace": "team-a", "uid": "u-1", "generation": 4},
        "spec": _spec(image="ruby:2.6"),
    }
    job = job_from_body(body)
    assert (job.name, job.namespace, job.uid, job.generation) == ("rspec", "team-a", "u-1", 4)
    assert job.spec.script == ["echo hi"]


def test_job_from_body_defaults_generation_to_one() -> None:
    job = job_from_body({"metadata": {"name": "a", "namespace": "b"}, "spec": _spec()})
    assert job.generation == 1
    assert job.uid == ""


def test_job_from_body_without_spec_is_invalid() -> None:
    with pytest.raises(InvalidSpec, match=r"^spec\.script: "):
        job_from_body({"metadata": {"name": "a", "namespace": "b"}})


def test_owner_reference_is_the_controller() -> None:
    job = Job(name="rspec", namespace="team-a", uid="u-1", generation=1, spec=parse_spec(_spec()))
    assert job.owner_reference() == {
        "apiVersion": "cijob.dev/v1alpha1",
        "kind": "CiJob",
        "name": "rspec",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
