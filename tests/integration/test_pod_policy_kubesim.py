"""docs/pod-policy.md against the real API server: PodSecurity admission decides on the pods the
operator renders, the shipped admission policy refuses an inline DOCKER_AUTH_CONFIG, and the
operator's credentials reach only the namespaces its credentialScope selects. The kubelet
simulator plays the node."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from cijob.api import policy
from integration.conftest import OperatorFactory
from integration.support import CiJobs
from integration.test_credentials_e2e import pull_secret, registries
from testground.kubesim import KubeSim
from testground.waits import wait_for

pytestmark = pytest.mark.cluster

JOB = {"image": "alpine:3.20", "script": ["make test"]}
RESTRICTED = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "buildContainerSecurityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    },
    "serviceContainerSecurityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    },
}
PRIVATE = "registry.example.com:5000/team/app:1.0"
PASSWORD = "scope-Pa55w0rd-91b"


def enforce(api: client.ApiClient, namespace: str, level: str) -> None:
    labels = {"pod-security.kubernetes.io/enforce": level}
    client.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": labels}})


def label(api: client.ApiClient, namespace: str, labels: dict[str, str | None]) -> None:
    client.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": labels}})


def finished(cijobs: CiJobs, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = cijobs.wait_phase(namespace, name)["status"]
    return status


def test_kubesim_baseline_namespace_runs_the_pod_as_rendered_without_a_token(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    api: client.ApiClient,
) -> None:
    enforce(api, namespace, "baseline")
    start_operator()
    cijobs.create(namespace, "plain", {**JOB, "services": ["postgres:11.7"]})
    cijobs.create(namespace, "with-sa", {**JOB, "serviceAccountName": "default"})
    assert finished(cijobs, namespace, "plain")["phase"] == "Succeeded"
    assert finished(cijobs, namespace, "with-sa")["phase"] == "Succeeded"
    plain, with_sa = cijobs.pod(namespace, "plain-1"), cijobs.pod(namespace, "with-sa-1")
    assert plain is not None and with_sa is not None
    assert plain["spec"]["automountServiceAccountToken"] is False
    mounts = [m["mountPath"] for m in plain["spec"]["containers"][0].get("volumeMounts", [])]
    assert "/var/run/secrets/kubernetes.io/serviceaccount" not in mounts
    assert with_sa["spec"]["automountServiceAccountToken"] is True
    with_mounts = [m["mountPath"] for m in with_sa["spec"]["containers"][0]["volumeMounts"]]
    assert "/var/run/secrets/kubernetes.io/serviceaccount" in with_mounts


def test_kubesim_restricted_namespace_refuses_the_plain_pod_and_admits_the_template(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    api: client.ApiClient,
) -> None:
    enforce(api, namespace, "restricted")
    plain = start_operator()
    cijobs.create(namespace, "plain", {**JOB, "services": ["postgres:11.7"]})
    status = finished(cijobs, namespace, "plain")
    assert (status["phase"], status["reason"]) == ("Failed", "AdmissionDenied"), status
    assert 'violates PodSecurity "restricted' in status["message"], status
    plain.stop()

    start_operator({"podTemplate": {**RESTRICTED, "labels": {"policy": "restricted"}}})
    cijobs.create(namespace, "shaped", {**JOB, "services": ["postgres:11.7"]})
    status = finished(cijobs, namespace, "shaped")
    assert status["phase"] == "Succeeded", status
    pod = cijobs.pod(namespace, "shaped-1")
    assert pod is not None
    assert pod["metadata"]["labels"]["policy"] == "restricted"
    assert pod["spec"]["securityContext"]["runAsUser"] == 1000
    (build,) = pod["spec"]["containers"]
    assert build["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in build["volumeMounts"]} >= {"/builds", "/tmp"}
    (service,) = pod["spec"]["initContainers"]
    assert service["securityContext"]["capabilities"] == {"drop": ["ALL"]}

    # A job may not loosen what the platform set; it fails before any pod is made.
    cijobs.create(namespace, "loose", {**JOB, "podTemplate": {"securityContext": {"runAsUser": 0}}})
    status = finished(cijobs, namespace, "loose")
    assert (status["phase"], status["reason"]) == ("Failed", "PolicyViolation"), status
    assert "spec.podTemplate.securityContext" in status["message"]
    assert cijobs.pods(namespace, "loose") == []


def _inline_job(namespace: str, name: str) -> dict[str, Any]:
    auth = json.dumps({"auths": {"registry.example.com:5000": {"auth": "Y2k6cGFzcw=="}}})
    return {
        "apiVersion": "cijob.dev/v1alpha1",
        "kind": "CiJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**JOB, "variables": {"DOCKER_AUTH_CONFIG": auth}},
    }


def test_inline_docker_auth_config_is_refused_at_apply_unless_single_tenant(
    cijobs: CiJobs, namespace: str, api: client.ApiClient
) -> None:
    label(api, namespace, {policy.INLINE_AUTH_LABEL: None})
    custom = client.CustomObjectsApi(api)

    def refusal() -> str | None:
        body = _inline_job(namespace, "inline")
        try:
            custom.create_namespaced_custom_object(
                "cijob.dev", "v1alpha1", namespace, "cijobs", body, dry_run="All"
            )
        except ApiException as e:
            return str(json.loads(e.body)["message"])
        return None

    # The policy takes effect once the API server has loaded it and the namespace's labels.
    message = wait_for("the inline DOCKER_AUTH_CONFIG to be refused", refusal)
    assert "cijobs-credentials.cijob.dev" in message
    assert "spec.variables.DOCKER_AUTH_CONFIG" in message
    assert "Secret" in message and "variablesFrom" in message
    # A Secret is the way: accepted.
    cijobs.create(namespace, "via-secret", {**JOB, "variablesFrom": [{"secretRef": {"name": "x"}}]})
    # The platform labels a namespace single-tenant: accepted there.
    label(api, namespace, {policy.INLINE_AUTH_LABEL: policy.INLINE_AUTH_ALLOWED})
    wait_for("the single-tenant namespace to accept it", lambda: refusal() is None)


def _pull_secret(cijobs: CiJobs, namespace: str, job: str) -> dict[str, Any] | None:
    secret = pull_secret(cijobs, namespace, job)
    return None if secret is None else registries(secret)


def test_kubesim_operator_credentials_only_in_selected_namespaces_helpers_too(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    api: client.ApiClient,
) -> None:
    auth = base64.b64encode(f"ci:{PASSWORD}".encode()).decode()
    operator_auth = json.dumps({"auths": {"registry.example.com:5000": {"auth": auth}}})
    selected = {"matchLabels": {"cijob.dev/operator-credentials": "true"}}
    op = start_operator(
        {"credentialScope": {"operatorCredentials": selected, "jobCredentialHelpers": selected}},
        env={"DOCKER_AUTH_CONFIG": operator_auth},
    )
    cijobs.create(namespace, "outside", {**JOB, "image": PRIVATE})
    assert finished(cijobs, namespace, "outside")["phase"] == "Succeeded"
    assert _pull_secret(cijobs, namespace, "outside") is None
    pod = cijobs.pod(namespace, "outside-1")
    assert pod is not None and "imagePullSecrets" not in pod["spec"]
    # The job's own credsStore would run with the operator's identity: refused here.
    store = json.dumps({"credsStore": "ecr-login"})
    cijobs.create(
        namespace, "helper", {**JOB, "image": PRIVATE, "variables": {"DOCKER_AUTH_CONFIG": store}}
    )
    status = finished(cijobs, namespace, "helper")
    assert (status["phase"], status["reason"]) == ("Failed", "PolicyViolation"), status
    assert "docker-credential-ecr-login may not run" in status["message"]
    assert "credentialScope.jobCredentialHelpers" in status["message"]

    label(api, namespace, {"cijob.dev/operator-credentials": "true"})
    cijobs.create(namespace, "inside", {**JOB, "image": PRIVATE})
    assert finished(cijobs, namespace, "inside")["phase"] == "Succeeded"
    auths = _pull_secret(cijobs, namespace, "inside")
    assert auths is not None and auths["registry.example.com:5000"]["username"] == "ci"
    # Inside, the helper runs (and, not being installed, fails naming itself).
    cijobs.create(
        namespace, "helper2", {**JOB, "image": PRIVATE, "variables": {"DOCKER_AUTH_CONFIG": store}}
    )
    status = finished(cijobs, namespace, "helper2")
    assert (status["phase"], status["reason"]) == ("Failed", "CredentialHelperFailed"), status
    assert PASSWORD not in op.log()
