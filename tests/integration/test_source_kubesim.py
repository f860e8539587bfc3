"""spec.source with the kubelet simulator playing the clone init container: status.commit,
SourceFetchFailed and its retry, InvalidSpec for the Secret, and no extra status write."""

from __future__ import annotations

import base64

import pytest

from integration.conftest import OperatorFactory
from integration.support import CiJobs
from testground.kubesim import KubeSim
from testground.plans import Behaviour

pytestmark = pytest.mark.cluster

SHA = "0123456789abcdef0123456789abcdef01234567"
URL = "https://git.example.com/group/project.git"


def job(**git: object) -> dict[str, object]:
    return {"image": "alpine:3.20", "script": ["make test"], "source": {"git": {"url": URL, **git}}}


def test_kubesim_status_commit_is_what_the_clone_checked_out(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    kubesim.plan_job(namespace, "pinned", Behaviour.succeeds(run_seconds=0.5))
    cijobs.create(namespace, "pinned", job(commit=SHA))
    status = cijobs.wait_phase(namespace, "pinned", "Succeeded")["status"]
    assert status["commit"] == SHA and status["shortCommit"] == SHA[:8]
    assert {"container": "clone", "image": "cijob-operator:0.1.0"}.items() <= next(
        i for i in status["images"] if i["container"] == "clone"
    ).items()
    pod = cijobs.pod(namespace, "pinned-1")
    assert pod is not None
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["clone"]
    assert pod["spec"]["containers"][0]["workingDir"] == "/builds/group/project"


def test_kubesim_source_fetch_failed_with_gits_message_and_retried(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    message = "cannot fetch branch nope: fatal: couldn't find remote ref refs/heads/nope"
    kubesim.plan_job(namespace, "unknown", Behaviour.clone_fails(message))
    cijobs.create(
        namespace,
        "unknown",
        {**job(ref="nope"), "retry": {"max": 1, "when": ["SourceFetchFailed"]}},
    )
    status = cijobs.wait_phase(namespace, "unknown", "Failed")["status"]
    assert (status["reason"], status["message"]) == ("SourceFetchFailed", message), status
    assert status["attempt"] == 2
    assert [a["reason"] for a in status["attempts"]] == ["SourceFetchFailed"]
    assert status.get("commit") is None
    events = cijobs.wait_event(namespace, "unknown", "SourceFetchFailed")
    assert any(e["type"] == "Warning" for e in events if e["reason"] == "SourceFetchFailed")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (None, "Secret git-creds does not exist"),
        ({"username": "me"}, "has none of the keys password or token"),
        ({"ssh-privatekey": "KEY"}, "has ssh-privatekey but no known_hosts"),
    ],
    ids=["missing", "no-password", "no-known-hosts"],
)
def test_kubesim_a_missing_secret_or_key_is_invalid_spec(
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    kubesim: KubeSim,
    data: dict[str, str] | None,
    problem: str,
) -> None:
    from kubernetes import client

    start_operator()
    if data is not None:
        secret = client.V1Secret(
            metadata=client.V1ObjectMeta(name="git-creds"),
            data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        )
        client.CoreV1Api(cijobs.api).create_namespaced_secret(namespace, secret)
    cijobs.create(namespace, "creds", job(secretRef={"name": "git-creds"}))
    status = cijobs.wait_phase(namespace, "creds", "Failed")["status"]
    assert status["reason"] == "InvalidSpec" and problem in status["message"], status
    assert "KEY" not in status["message"]
    assert cijobs.pods(namespace, "creds") == []


def test_kubesim_a_job_with_source_writes_no_more_statuses_than_one_without(
    start_operator: OperatorFactory, cijobs: CiJobs, namespace: str, kubesim: KubeSim
) -> None:
    start_operator()
    plain = {"image": "alpine:3.20", "script": ["make test"]}
    counts = []
    for name, spec in (("plain", plain), ("cloned", job())):
        kubesim.plan_job(namespace, name, Behaviour.succeeds(run_seconds=0.3))
        created = cijobs.create(namespace, name, spec)
        cijobs.wait_phase(namespace, name, "Succeeded")
        counts.append(_writes(cijobs, namespace, name, created["metadata"]["resourceVersion"]))
    assert counts[0] == counts[1], counts


def _writes(cijobs: CiJobs, namespace: str, name: str, since: str) -> int:
    """The CiJob's writes since its creation, replayed by a watch from that resourceVersion."""
    from kubernetes import watch

    stream = watch.Watch().stream(
        cijobs.custom.list_namespaced_custom_object, "cijob.dev", "v1alpha1", namespace,
        "cijobs", field_selector=f"metadata.name={name}", resource_version=since,
        timeout_seconds=2,
    )  # fmt: skip
    return sum(1 for event in stream if event["type"] == "MODIFIED")
