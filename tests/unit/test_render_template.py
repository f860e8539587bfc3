"""The platform's podTemplate and the job's own on the rendered pod (docs/pod-policy.md)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from cijob.api.podtemplate import PlatformPodTemplate, PodTemplateFields
from cijob.config import OperatorConfig
from cijob.errors import InvalidSpec, PolicyViolation
from cijob.job import Job, parse_spec
from cijob.render.pod import get_pod
from cijob.render.template import apply_pod_template, merged_fields

Manifest = dict[str, Any]
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod_of(spec: dict[str, Any], **config: Any) -> Manifest:
    job = Job(name="j", namespace="team-a", uid="u", generation=1, spec=parse_spec(spec))
    return get_pod(job, 1, OperatorConfig.model_validate(config))


def job(**fields: Any) -> dict[str, Any]:
    return {"image": "ruby:2.6", "script": ["true"], **fields}


def test_no_template_no_service_account_token() -> None:
    pod = pod_of(job())
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert "securityContext" not in pod["spec"]
    assert "securityContext" not in pod["spec"]["containers"][0]


def test_a_named_service_account_gets_its_token_unless_the_platform_says_no() -> None:
    assert pod_of(job(serviceAccountName="ci"))["spec"]["automountServiceAccountToken"] is True
    no = {"automountServiceAccountToken": False}
    pod = pod_of(job(serviceAccountName="ci"), podTemplate=no)
    assert pod["spec"]["automountServiceAccountToken"] is False
    yes = {"automountServiceAccountToken": True}
    assert pod_of(job(), podTemplate=yes)["spec"]["automountServiceAccountToken"] is True


def test_platform_fields_reach_pod_and_containers() -> None:
    template = {
        "labels": {"cost": "ci", "cijob.dev/job": "not-this"},
        "annotations": {"a": "1"},
        "priorityClassName": "ci-low",
        "runtimeClassName": "gvisor",
        "affinity": {"podAntiAffinity": {"x": 1}},
        "dnsConfig": {"options": [{"name": "ndots", "value": "1"}]},
        "securityContext": RESTRICTED_POD,
        "buildContainerSecurityContext": RESTRICTED_CONTAINER,
        "serviceContainerSecurityContext": {"runAsUser": 999},
    }
    pod = pod_of(job(services=["postgres:11.7"]), podTemplate=template)
    spec = pod["spec"]
    assert pod["metadata"]["labels"]["cost"] == "ci"
    assert pod["metadata"]["labels"]["cijob.dev/job"] == "j"  # the operator's own win
    assert pod["metadata"]["annotations"]["a"] == "1"
    assert pod["metadata"]["annotations"]["cijob.dev/generation"] == "1"
    assert (spec["priorityClassName"], spec["runtimeClassName"]) == ("ci-low", "gvisor")
    assert spec["affinity"] == {"podAntiAffinity": {"x": 1}}
    assert spec["dnsConfig"]["options"] == [{"name": "ndots", "value": "1"}]
    assert spec["securityContext"] == RESTRICTED_POD
    assert spec["containers"][0]["securityContext"] == RESTRICTED_CONTAINER
    assert spec["initContainers"][0]["securityContext"] == {"runAsUser": 999}


def test_clone_container_gets_its_own_context_when_there_is_one() -> None:
    platform = PlatformPodTemplate.model_validate(
        {"cloneContainerSecurityContext": {"runAsUser": 7}, "serviceContainerSecurityContext": {}}
    )
    base = pod_of(job(services=["redis"]))
    pod = copy.deepcopy(base)
    pod["spec"]["initContainers"].insert(0, {"name": "clone", "image": "git"})
    out = apply_pod_template(pod, platform, None)
    clone, service = out["spec"]["initContainers"]
    assert clone["securityContext"] == {"runAsUser": 7}
    assert "securityContext" not in service
    # Without a clone container nothing else changes.
    assert apply_pod_template(base, platform, None)["spec"] == {
        **base["spec"],
        "automountServiceAccountToken": False,
    }


def test_job_fields_merge_over_the_platform_one_level_deep() -> None:
    platform = PlatformPodTemplate.model_validate(
        {
            "labels": {"team": "platform", "cost": "ci"},
            "securityContext": RESTRICTED_POD,
            "affinity": {"podAntiAffinity": {"p": 1}, "nodeAffinity": {"n": 1}},
            "priorityClassName": "low",
            "overwriteAllowed": ["labels", "securityContext", "affinity", "priorityClassName"],
        }
    )
    own = PodTemplateFields.model_validate(
        {
            "labels": {"team": "a"},
            "securityContext": {"runAsUser": 2000},
            "affinity": {"nodeAffinity": {"mine": 1}},
            "priorityClassName": "high",
        }
    )
    fields = merged_fields(platform, own)
    assert fields["labels"] == {"team": "a", "cost": "ci"}
    assert fields["securityContext"] == {**RESTRICTED_POD, "runAsUser": 2000}
    assert fields["affinity"] == {"podAntiAffinity": {"p": 1}, "nodeAffinity": {"mine": 1}}
    assert fields["priorityClassName"] == "high"


def test_a_field_not_allowed_fails_the_job_naming_it() -> None:
    with pytest.raises(PolicyViolation) as e:
        pod_of(job(podTemplate={"securityContext": {"runAsUser": 0}}))
    assert e.value.message == (
        "spec.podTemplate.securityContext: the platform does not let jobs set securityContext "
        "(podTemplate.overwriteAllowed: labels, annotations)"
    )
    with pytest.raises(PolicyViolation, match=r"overwriteAllowed: none\)"):
        pod_of(job(podTemplate={"labels": {"a": "b"}}), podTemplate={"overwriteAllowed": []})


def test_job_labels_allowed_by_default() -> None:
    pod = pod_of(job(podTemplate={"labels": {"suite": "rspec"}, "annotations": {"x": "y"}}))
    assert pod["metadata"]["labels"]["suite"] == "rspec"
    assert pod["metadata"]["annotations"]["x"] == "y"


def test_read_only_root_filesystem_gets_a_scratch_tmp() -> None:
    template = {"buildContainerSecurityContext": {"readOnlyRootFilesystem": True}}
    pod = pod_of(job(), podTemplate=template)
    build = pod["spec"]["containers"][0]
    assert {"name": "tmp", "mountPath": "/tmp"} in build["volumeMounts"]
    assert {"name": "builds", "mountPath": "/builds"} in build["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["spec"]["volumes"]


def test_template_is_typed() -> None:
    with pytest.raises(ValidationError):
        OperatorConfig.model_validate({"podTemplate": {"securityContext": {"runAsUser": "root"}}})
    with pytest.raises(ValidationError):
        OperatorConfig.model_validate({"podTemplate": {"overwriteAllowed": ["hostNetwork"]}})
    with pytest.raises(InvalidSpec, match=r"spec\.podTemplate\.hostNetwork"):
        parse_spec(job(podTemplate={"hostNetwork": True}))


@pytest.mark.parametrize(
    ("template", "workdir"),
    [
        ({}, "/builds/team-a/j"),
        ({"securityContext": {"runAsUser": 1000}}, "/builds"),
        ({"securityContext": {"runAsNonRoot": True}}, "/builds"),
        ({"buildContainerSecurityContext": {"runAsUser": 0}}, "/builds/team-a/j"),
        (
            {
                "securityContext": {"runAsUser": 1000},
                "buildContainerSecurityContext": {"runAsUser": 0},
            },
            "/builds/team-a/j",
        ),
    ],
)
def test_a_build_not_run_as_root_starts_in_builds(template: dict[str, Any], workdir: str) -> None:
    # The launcher then makes the project directory as the build's user (real-node test).
    build = pod_of(job(), podTemplate=template)["spec"]["containers"][0]
    assert build["workingDir"] == workdir
    assert {e["name"]: e.get("value") for e in build["env"]}["CI_PROJECT_DIR"] == "/builds/team-a/j"


def test_the_source_helpers_clone_container_gets_the_clone_context() -> None:
    source = {"git": {"url": "https://git.example.com/group/project.git"}}
    template = {
        "cloneContainerSecurityContext": {"runAsUser": 1000},
        "serviceContainerSecurityContext": {"runAsUser": 999},
    }
    pod = pod_of(job(source=source, services=["redis"]), podTemplate=template)
    contexts = {c["name"]: c.get("securityContext") for c in pod["spec"]["initContainers"]}
    assert contexts == {"clone": {"runAsUser": 1000}, "svc-0": {"runAsUser": 999}}
