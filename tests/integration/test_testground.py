"""The test ground is a real control plane, and its simulated kubelet writes real pod statuses."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from testground import reasons as r
from testground.kubesim import KubeSim
from testground.plans import Behaviour
from testground.waits import wait_for

pytestmark = pytest.mark.cluster
Json = dict[str, Any]
RUBY = "ruby:3.3"
RUBY_ID_PREFIX = "docker.io/library/ruby@sha256:"


# --- the control plane ----------------------------------------------------------------------


def test_crd_cel_validation_rejects_a_bad_object_with_the_rule_message(
    api: client.ApiClient, namespace: str
) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.testground.cijob.dev"
    message = "spec.minReplicas must not exceed spec.replicas"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "replicas": {"type": "integer"},
                                        "minReplicas": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.minReplicas <= self.replicas",
                                            "message": message,
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(crd)
    try:

        def established() -> bool:
            got = ext.read_custom_resource_definition(f"widgets.{group}")
            return any(
                c.type == "Established" and c.status == "True" for c in got.status.conditions or []
            )

        wait_for("the CRD to be Established", established)
        objects = client.CustomObjectsApi(api)

        def widget(name: str, replicas: int, minimum: int) -> Json:
            return {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": {"replicas": replicas, "minReplicas": minimum},
            }

        # Discovery of a new CRD reaches the handler chain a moment after Established.
        wait_for(
            "the new resource to be served",
            lambda: objects.create_namespaced_custom_object(
                group, "v1", namespace, "widgets", widget("good", 3, 1)
            ),
        )
        with pytest.raises(ApiException) as refused:
            objects.create_namespaced_custom_object(
                group, "v1", namespace, "widgets", widget("bad", 1, 3)
            )
        assert refused.value.status == 422
        assert message in json.loads(refused.value.body)["message"]
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")


def test_garbage_collector_deletes_a_dependent_after_its_owner(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "dependent", "ownerReferences": [ref]}}
    )
    core.delete_namespaced_config_map("owner", namespace)

    def dependent_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
            return False
        except ApiException as e:
            return e.status == 404

    wait_for("the garbage collector to delete the dependent", dependent_gone)


def _cluster_ssl(kubeconfig: Path) -> tuple[str, ssl.SSLContext]:
    cfg = yaml.safe_load(kubeconfig.read_text())
    cluster = cfg["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    return cluster["server"], ssl.create_default_context(cadata=ca)


def _get_with_token(kubeconfig: Path, path: str, token: str) -> tuple[int, Json]:
    server, ctx = _cluster_ssl(kubeconfig)
    req = urllib.request.Request(server + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return int(e.code), json.loads(e.read())


def test_rbac_refuses_a_service_account_without_rights(
    api: client.ApiClient, namespace: str, kubeconfig: Path, kubectl: Any
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    user = f"system:serviceaccount:{namespace}:nobody"

    can_i = kubectl("auth", "can-i", "list", "pods", "-n", namespace, f"--as={user}", check=False)
    assert (can_i.returncode, can_i.stdout.strip()) == (1, "no")

    token = core.create_namespaced_service_account_token(
        "nobody", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    pods = f"/api/v1/namespaces/{namespace}/pods"
    code, body = _get_with_token(kubeconfig, pods, token)
    assert code == 403, body
    assert user in body["message"]
    assert 'cannot list resource "pods"' in body["message"]

    # The same token is allowed once RBAC says so: the refusal above was authorization's.
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "nobody-reads-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": namespace}],
        },
    )
    wait_for(
        "RBAC to allow the bound role", lambda: _get_with_token(kubeconfig, pods, token)[0] == 200
    )
    can_i = kubectl("auth", "can-i", "list", "pods", "-n", namespace, f"--as={user}", check=False)
    assert (can_i.returncode, can_i.stdout.strip()) == (0, "yes")


def test_kubectl_version_reports_the_pinned_release(kubectl: Any) -> None:
    versions = json.loads(kubectl("version", "-o", "json").stdout)
    assert versions["serverVersion"]["gitVersion"] == "v1.34.4"
    assert versions["clientVersion"]["gitVersion"] == "v1.34.4"


def test_helm_lints_and_templates_a_scratch_chart(
    helm: Any, kubectl: Any, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    chart = tmp_path / "scratch"
    helm("create", str(chart))
    lint = helm("lint", str(chart))
    assert "1 chart(s) linted, 0 chart(s) failed" in lint.stdout
    rendered = helm("template", "demo", str(chart), "--namespace", namespace, "--skip-tests").stdout
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
    assert {"Deployment", "Service", "ServiceAccount"} <= kinds
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(rendered)
    # The apiserver itself accepts what the chart renders.
    kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(manifest))


# --- the simulated kubelet --------------------------------------------------------------------


def _pod(
    name: str, job: str | None = None, attempt: int = 1, sidecar: bool = True, **spec: Any
) -> Json:
    labels = {"cijob.dev/job": job or name, "cijob.dev/attempt": str(attempt)}
    body: Json = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "build", "image": RUBY, "command": ["sh", "-c", "true"]}],
            **spec,
        },
    }
    if sidecar:
        body["spec"]["initContainers"] = [
            {"name": "svc-0", "image": "postgres:16", "restartPolicy": "Always"}
        ]
    return body


class PodWatch:
    """Every version of one pod the API shows, recorded by a watch started before it exists."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        self.versions: list[Json] = []
        self.deleted = threading.Event()
        self._watch = watch.Watch()
        self._stopping = False
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        try:
            self._record()
        except Exception:
            if not self._stopping:  # a stopped watch ends with a broken stream: expected
                raise

    def _record(self) -> None:
        core = client.CoreV1Api(self.api)
        rv = core.list_namespaced_pod(self.namespace).metadata.resource_version
        self._started.set()
        for event in self._watch.stream(
            core.list_namespaced_pod,
            self.namespace,
            field_selector=f"metadata.name={self.name}",
            resource_version=rv,
            timeout_seconds=120,
        ):
            self.versions.append(self.api.sanitize_for_serialization(event["object"]))
            if event["type"] == "DELETED":
                self.deleted.set()
                return

    def phases(self) -> list[str]:
        """The phases seen, without repeats."""
        out: list[str] = []
        for v in self.versions:
            phase = (v.get("status") or {}).get("phase")
            if phase and (not out or out[-1] != phase):
                out.append(phase)
        return out

    def first(self, phase: str) -> Json:
        return next(v for v in self.versions if v["status"].get("phase") == phase)

    def last(self) -> Json:
        return self.versions[-1]

    def stop(self) -> None:
        self._stopping = True
        self._watch.stop()


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def pod_watch(api: client.ApiClient, namespace: str) -> Iterator[Any]:
    watches: list[PodWatch] = []

    def start(name: str) -> PodWatch:
        w = PodWatch(api, namespace, name)
        watches.append(w)
        return w

    yield start
    for w in watches:
        w.stop()


def _conditions(pod: Json) -> dict[str, Json]:
    return {c["type"]: c for c in pod["status"].get("conditions") or []}


def _state(status: Json) -> tuple[str, Json]:
    ((kind, detail),) = status["state"].items()
    return kind, detail


def _waiting(reason: str) -> Callable[[Json], bool]:
    """A predicate on a written status: the build container waits with `reason`."""

    def check(status: Json) -> bool:
        state = status["containerStatuses"][0]["state"]
        return bool(state.get("waiting", {}).get("reason") == reason)

    return check


def _wait_phase(core: client.CoreV1Api, namespace: str, name: str, phase: str) -> Json:
    def check() -> Json | None:
        pod = core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, namespace))
        return pod if pod["status"].get("phase") == phase else None

    return wait_for(f"pod {name} to be {phase}", check)


def test_kubesim_runs_a_pod_with_a_native_sidecar_pending_running_succeeded(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str, pod_watch: Any
) -> None:
    w = pod_watch("j-1")
    core.create_namespaced_pod(namespace, _pod("j-1", job="j"))
    wait_for("the pod to succeed", lambda: "Succeeded" in w.phases())
    assert w.phases() == ["Pending", "Running", "Succeeded"]

    # Pending as the kubelet first reports it: bound, sandbox not ready, containers waiting.
    pending = next(v for v in w.versions if v["status"].get("containerStatuses"))
    assert pending["spec"]["nodeName"] == "cijob-sim-node"
    assert pending["status"]["phase"] == "Pending"
    conditions = _conditions(pending)
    assert conditions["PodScheduled"]["status"] == "True"
    assert conditions["PodReadyToStartContainers"]["status"] == "False"
    assert conditions["Initialized"] == {
        **conditions["Initialized"],
        "status": "False",
        "reason": "ContainersNotInitialized",
        "message": "containers with incomplete status: [svc-0]",
    }
    assert conditions["Ready"]["message"] == "containers with unready status: [svc-0 build]"
    for status in (
        pending["status"]["containerStatuses"] + pending["status"]["initContainerStatuses"]
    ):
        assert _state(status) == ("waiting", {"reason": "PodInitializing"})

    running = w.first("Running")
    assert running["status"]["podIP"] and running["status"]["hostIP"]
    assert {c: s["status"] for c, s in _conditions(running).items()} == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    (sidecar,) = running["status"]["initContainerStatuses"]
    (build,) = running["status"]["containerStatuses"]
    for status in (sidecar, build):
        kind, detail = _state(status)
        assert kind == "running" and detail["startedAt"]
        assert status["ready"] is True and status["started"] is True
        assert status["containerID"].startswith("containerd://")
    assert build["image"] == "docker.io/library/ruby:3.3"
    assert (
        build["imageID"].startswith(RUBY_ID_PREFIX)
        and len(build["imageID"]) == len(RUBY_ID_PREFIX) + 64
    )
    assert sidecar["imageID"].startswith("docker.io/library/postgres@sha256:")

    done = w.first("Succeeded")
    kind, detail = _state(done["status"]["containerStatuses"][0])
    assert kind == "terminated"
    assert (detail["exitCode"], detail["reason"]) == (0, "Completed")
    assert detail["startedAt"] and detail["finishedAt"]
    assert detail["containerID"] == build["containerID"]
    assert _state(done["status"]["initContainerStatuses"][0])[0] == "terminated"
    assert _conditions(done)["Ready"]["reason"] == "PodCompleted"
    # About three status writes, as a kubelet makes for a short pod.
    kubesim.wait_for(namespace, "j-1", "Succeeded")
    assert [s["phase"] for s in kubesim.history(namespace, "j-1")] == [
        "Pending",
        "Running",
        "Succeeded",
    ]


def test_kubesim_exit_code_3_fails_the_pod(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str
) -> None:
    kubesim.plan_job(namespace, "fails", Behaviour.exits(3), attempt=1)
    core.create_namespaced_pod(namespace, _pod("fails-1", job="fails", attempt=1))
    pod = _wait_phase(core, namespace, "fails-1", "Failed")
    kind, detail = _state(pod["status"]["containerStatuses"][0])
    assert (kind, detail["exitCode"], detail["reason"]) == ("terminated", 3, "Error")
    assert _conditions(pod)["Ready"]["reason"] == "PodFailed"


def test_kubesim_plans_by_job_and_attempt(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str
) -> None:
    kubesim.plan_job(namespace, "retry", Behaviour.exits(1), attempt=1)
    kubesim.plan_job(namespace, "retry", Behaviour.succeeds(), attempt=2)
    core.create_namespaced_pod(namespace, _pod("retry-1", job="retry", attempt=1, sidecar=False))
    core.create_namespaced_pod(namespace, _pod("retry-2", job="retry", attempt=2, sidecar=False))
    _wait_phase(core, namespace, "retry-1", "Failed")
    _wait_phase(core, namespace, "retry-2", "Succeeded")


def test_kubesim_image_pull_failure_backs_off_and_stays_pending(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str
) -> None:
    kubesim.plan(namespace, "nopull-1", Behaviour.image_pull_failure())
    body = _pod("nopull-1", sidecar=False)
    body["spec"]["containers"][0]["image"] = "registry.example.com/private/ruby:3.3"
    core.create_namespaced_pod(namespace, body)

    def waiting_reason(reason: str) -> Json | None:
        pod = core.api_client.sanitize_for_serialization(
            core.read_namespaced_pod("nopull-1", namespace)
        )
        statuses = pod["status"].get("containerStatuses") or []
        if statuses and statuses[0]["state"].get("waiting", {}).get("reason") == reason:
            return pod
        return None

    pulled = kubesim.wait_for(namespace, "nopull-1", _waiting(r.ERR_IMAGE_PULL))
    message = pulled["containerStatuses"][0]["state"]["waiting"]["message"]
    assert '"registry.example.com/private/ruby:3.3"' in message
    assert "pull access denied" in message
    pod = wait_for("ImagePullBackOff", lambda: waiting_reason(r.IMAGE_PULL_BACK_OFF))
    assert pod["status"]["phase"] == "Pending"
    back_off = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert back_off.startswith(
        'Back-off pulling image "registry.example.com/private/ruby:3.3": ErrImagePull: '
    )


def test_kubesim_reports_an_invalid_image_name_like_a_kubelet(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str
) -> None:
    body = _pod("badname-1", sidecar=False)
    body["spec"]["containers"][0]["image"] = "Ruby:3.3"
    core.create_namespaced_pod(namespace, body)
    status = kubesim.wait_for(namespace, "badname-1", _waiting(r.INVALID_IMAGE_NAME))
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"]["waiting"]["message"] == (
        'Failed to apply default image tag "Ruby:3.3": couldn\'t parse image name "Ruby:3.3": '
        "invalid reference format: repository name (library/Ruby) must be lowercase"
    )


def test_kubesim_reports_a_missing_secret_as_create_container_config_error(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str
) -> None:
    body = _pod("nosecret-1", sidecar=False)
    body["spec"]["containers"][0]["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "token"}}}
    ]
    core.create_namespaced_pod(namespace, body)
    status = kubesim.wait_for(namespace, "nosecret-1", _waiting(r.CREATE_CONTAINER_CONFIG_ERROR))
    assert (
        status["containerStatuses"][0]["state"]["waiting"]["message"] == 'secret "absent" not found'
    )


def test_kubesim_oom_kill(kubesim: KubeSim, core: client.CoreV1Api, namespace: str) -> None:
    kubesim.plan(namespace, "oom-1", Behaviour.oom_killed())
    core.create_namespaced_pod(namespace, _pod("oom-1"))
    pod = _wait_phase(core, namespace, "oom-1", "Failed")
    kind, detail = _state(pod["status"]["containerStatuses"][0])
    assert (kind, detail["exitCode"], detail["reason"]) == ("terminated", 137, "OOMKilled")


def test_kubesim_eviction_under_node_pressure(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str
) -> None:
    kubesim.plan(namespace, "evicted-1", Behaviour.evicted())
    core.create_namespaced_pod(namespace, _pod("evicted-1"))
    pod = _wait_phase(core, namespace, "evicted-1", "Failed")
    assert pod["status"]["reason"] == "Evicted"
    assert pod["status"]["message"].startswith("The node was low on resource: memory.")
    disruption = _conditions(pod)["DisruptionTarget"]
    assert (disruption["status"], disruption["reason"]) == ("True", "TerminationByKubelet")
    assert _state(pod["status"]["containerStatuses"][0])[1]["exitCode"] == 137


def test_kubesim_active_deadline_fails_the_pod(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str
) -> None:
    kubesim.plan(namespace, "slow-1", Behaviour.held())
    core.create_namespaced_pod(namespace, _pod("slow-1", activeDeadlineSeconds=1))
    pod = _wait_phase(core, namespace, "slow-1", "Failed")
    assert pod["status"]["reason"] == "DeadlineExceeded"
    assert (
        pod["status"]["message"] == "Pod was active on the node longer than the specified deadline"
    )
    assert _state(pod["status"]["containerStatuses"][0])[0] == "terminated"


def test_kubesim_missing_shell_is_a_start_error(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str
) -> None:
    kubesim.plan(namespace, "noshell-1", Behaviour.no_shell())
    core.create_namespaced_pod(namespace, _pod("noshell-1"))
    pod = _wait_phase(core, namespace, "noshell-1", "Failed")
    kind, detail = _state(pod["status"]["containerStatuses"][0])
    assert (kind, detail["exitCode"], detail["reason"]) == ("terminated", 128, "StartError")
    assert 'exec: "sh": executable file not found in $PATH' in detail["message"]


def test_kubesim_finishes_a_graceful_deletion(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str, pod_watch: Any
) -> None:
    kubesim.plan(namespace, "held-1", Behaviour.held())
    w = pod_watch("held-1")
    core.create_namespaced_pod(namespace, _pod("held-1"))
    _wait_phase(core, namespace, "held-1", "Running")
    core.delete_namespaced_pod("held-1", namespace)  # default grace period: 30 s
    assert w.deleted.wait(30), "the pod was not removed"
    last = w.last()
    assert last["status"]["phase"] == "Failed"
    kind, detail = _state(last["status"]["containerStatuses"][0])
    assert (kind, detail["exitCode"]) == ("terminated", 143)


def test_kubesim_holds_a_pod_until_released(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str
) -> None:
    kubesim.plan(namespace, "held-2", Behaviour.held())
    core.create_namespaced_pod(namespace, _pod("held-2", sidecar=False))
    _wait_phase(core, namespace, "held-2", "Running")
    kubesim.release(namespace, "held-2", Behaviour.exits(7))
    pod = _wait_phase(core, namespace, "held-2", "Failed")
    assert _state(pod["status"]["containerStatuses"][0])[1]["exitCode"] == 7


def test_kubesim_leaves_pods_meant_for_another_node(
    kubesim: KubeSim, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(
        namespace, _pod("elsewhere-1", nodeSelector={"kubernetes.io/hostname": "another-node"})
    )
    core.create_namespaced_pod(namespace, _pod("here-1"))
    # The simulator handles pods in the order the watch delivers them: once the second one
    # has run, it has already passed over the first.
    _wait_phase(core, namespace, "here-1", "Succeeded")
    pod = core.read_namespaced_pod("elsewhere-1", namespace)
    assert pod.spec.node_name is None
    assert kubesim.history(namespace, "elsewhere-1") == []


def test_kubesim_node_is_ready_and_untainted(kubesim: KubeSim, core: client.CoreV1Api) -> None:
    node = core.api_client.sanitize_for_serialization(core.read_node(kubesim.node_name))
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.34.4"
    ready = {c["type"]: c for c in node["status"]["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
    assert not node["spec"].get("taints")
    assert node["status"]["allocatable"]["pods"]
