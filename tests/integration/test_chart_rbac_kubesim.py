"""The chart's RBAC proven by use: the operator runs with a token of the chart's own
ServiceAccount and the chart's own configuration (its ConfigMap), and jobs go through every path
that needs a permission; not one API call may be refused. The kubelet simulator plays the node;
the chart's operator pod itself stays Pending in a namespace no node serves (the real-node test
test_operator_in_cluster.py runs it as a pod)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from integration.support import CiJobs, Operator, fresh_namespace
from integration.test_chart_install import CHART, Install, Kube, release_for
from integration.test_operator_in_cluster import REFUSED
from testground.kubesim import KubeSim
from testground.plans import Behaviour
from testground.waits import wait_for

pytestmark = pytest.mark.cluster

JOB = {"image": "alpine:3.20", "script": ["make test"]}
PRIVATE = "registry.example.com:5000/team/app:1.0"
SELECTED = "cijob.dev/operator-credentials"


@pytest.fixture
def home(api: client.ApiClient) -> Iterator[str]:
    """The release namespace, which the kubelet simulator does not serve."""
    name = f"rbac-home-{uuid.uuid4().hex[:6]}"
    with fresh_namespace(api, name):
        yield name


def token_kubeconfig(admin: Path, token: str, path: Path) -> Path:
    """A kubeconfig for the same API server that authenticates with `token` alone."""
    config = yaml.safe_load(admin.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": "sa"}}],
                "current-context": "sa",
            }
        )
    )
    return path


def gone(cijobs: CiJobs, namespace: str, name: str) -> bool:
    return cijobs.get(namespace, name) is None


def test_kubesim_operator_as_the_charts_service_account_needs_nothing_more(
    kube: Kube,
    cijobs: CiJobs,
    namespace: str,
    home: str,
    kubesim: KubeSim,
    api: client.ApiClient,
    crds: list[str],
    tmp_path: Path,
) -> None:
    inst = Install(kube, home, release_for(home))
    selector = json.dumps({"matchLabels": {SELECTED: "true"}})
    kube.helm(
        "install", inst.release, str(CHART), "--namespace", home,
        "--set", "validationPolicy.enabled=false",  # cluster-scoped, applied from crds/
        "--set", f"watchNamespaces={{{namespace}}}",
        "--set", f"defaults.image={JOB['image']}",
        "--set-json", f"credentialScope.operatorCredentials={selector}",
    )  # fmt: skip
    inst.installed = True
    try:
        token = kube.kubectl("create", "token", inst.release, "-n", home, "--duration=1h").strip()
        kubeconfig = token_kubeconfig(kube.cluster.kubeconfig, token, tmp_path / "sa.kubeconfig")
        settings: dict[str, Any] = inst.operator_config()
        assert settings["credentialScope"]["operatorCredentials"]["matchLabels"] == {
            SELECTED: "true"
        }
        auth = base64.b64encode(b"ci:rbac-pass").decode()
        env = {
            "DOCKER_AUTH_CONFIG": json.dumps(
                {"auths": {"registry.example.com:5000": {"auth": auth}}}
            )
        }
        lease = ["--leader-elect", "--lease-name", inst.release, "--lease-namespace", home]
        op = Operator(
            str(kubeconfig), [namespace], tmp_path / "op", settings=settings, env=env,
            log_level="info", extra_args=lease,
        )  # fmt: skip
        op.start()
        try:
            run_every_path(cijobs, namespace, kubesim, api)
            holder = kube.kubectl(
                "get", "lease", inst.release, "-n", home, "-o", "jsonpath={.spec.holderIdentity}"
            )
            assert holder, "the operator took no Lease"
        finally:
            op.stop()
        refused = [line for line in op.log().splitlines() if REFUSED.search(line)]
        assert refused == [], op.log()[-4000:]
    finally:
        kube.run("helm", "uninstall", inst.release, "--namespace", home)


def run_every_path(cijobs: CiJobs, ns: str, kubesim: KubeSim, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    # get secrets, get configmaps: variablesFrom.
    core.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "stringData": {"A": "1"}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}, "data": {"B": "2"}})
    # get namespaces: the credential scope; create, then (the retry) patch the pull Secret.
    core.patch_namespace(ns, {"metadata": {"labels": {SELECTED: "true"}}})
    kubesim.plan_job(ns, "private", Behaviour.exits(1), attempt=1)
    kubesim.plan_job(ns, "fails", Behaviour.exits(3))
    kubesim.plan_job(ns, "running", Behaviour.held())
    cijobs.create(ns, "ok", {"script": ["true"]})  # the chart's defaults.image
    cijobs.create(ns, "fails", JOB)
    cijobs.create(
        ns, "vars",
        {**JOB, "variablesFrom": [{"secretRef": {"name": "s"}}, {"configMapRef": {"name": "c"}}]},
    )  # fmt: skip
    cijobs.create(ns, "private", {**JOB, "image": PRIVATE, "retry": {"max": 1}})
    cijobs.create(ns, "running", JOB)
    cijobs.create(ns, "unscheduled", {**JOB, "nodeSelector": {"no-such": "node"}})
    cijobs.create(ns, "ttl", {**JOB, "ttlSecondsAfterFinished": 1})

    assert cijobs.wait_phase(ns, "ok")["status"]["phase"] == "Succeeded"
    assert cijobs.wait_phase(ns, "vars")["status"]["phase"] == "Succeeded"
    status = cijobs.wait_phase(ns, "fails")["status"]
    assert status["reason"] == "ScriptFailure", status
    events = cijobs.wait_event(ns, "fails", "ScriptFailure")
    assert any(e["reason"] == "ScriptFailure" for e in events), events
    status = cijobs.wait_phase(ns, "private")["status"]
    assert (status["phase"], status["attempt"]) == ("Succeeded", 2), status
    secret = core.read_namespaced_secret("private-registry-credentials", ns)
    assert secret.metadata.owner_references[0].name == "private"
    # patch pods: a running attempt is stopped; delete pods: one no kubelet started.
    cijobs.wait_phase(ns, "running", "Running")
    cijobs.wait_phase(ns, "unscheduled", "Pending")
    cijobs.patch_spec(ns, "running", {"cancel": True})
    cijobs.patch_spec(ns, "unscheduled", {"cancel": True})
    assert cijobs.wait_phase(ns, "running")["status"]["phase"] == "Canceled"
    assert cijobs.wait_phase(ns, "unscheduled")["status"]["phase"] == "Canceled"
    wait_for("the unstarted pod to be deleted", lambda: cijobs.pod(ns, "unscheduled-1") is None)
    # delete cijobs: ttlSecondsAfterFinished.
    wait_for("the finished CiJob to be deleted", lambda: gone(cijobs, ns, "ttl"), timeout=60)


@pytest.fixture
def kube(cluster: Any) -> Kube:
    return Kube(cluster)
