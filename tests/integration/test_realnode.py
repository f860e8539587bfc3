"""End to end on a REAL node: kubelet + containerd + runc run the operator's pods, pulling the
test images from the private htpasswd registry (tests/testground/realnode.py).

Part of `make test` (about 2 minutes; the node itself starts in ~5 s). Where the machine cannot
run the node (not root, packages or the kubelet binary missing: `python -m
testground.realnode check` lists them) the tests FAIL with what is missing; only deselecting
them (`make test PYTEST_ARGS='-m "not realnode"'`) leaves them out. Not run by the
kubelet simulator: the jobs' namespaces are made here, outside the simulator's, and their pods
select the real node and tolerate its taint.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from integration.conftest import OperatorFactory
from integration.support import CiJobs, fresh_namespace
from testground import realnode

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]

PLACEMENT = {
    "nodeSelector": {"kubernetes.io/hostname": realnode.NODE_NAME},
    "tolerations": [{"key": realnode.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
}
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def node(kubeconfig: Path) -> Iterator[realnode.NodeState]:
    """The real node of the test ground that `kubeconfig` belongs to (started if needed, and
    then stopped after this module, so its kube-scheduler never runs beside other modules'
    kubelet simulator)."""
    root = kubeconfig.resolve().parent
    missing = realnode.requirements(realnode.NodeLayout(realnode.cluster.Layout(root)))
    if missing:
        pytest.fail(
            "no real node on this machine: missing "
            + "; ".join(missing)
            + " (install as .ci/run does, or deselect these tests with -m 'not realnode')",
            pytrace=False,
        )
    try:
        state, started = realnode.up(root, echo=lambda line: print(line, flush=True))
    except realnode.NodeError as e:
        pytest.fail(f"the real node did not start: {e}", pytrace=False)
    try:
        yield state
    finally:
        if started:
            realnode.down(root, echo=lambda line: None)


@pytest.fixture
def namespace(api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """Overrides the suite's: a namespace the kubelet simulator never serves (not in
    SESSION_NAMESPACES), so `start_operator` watches it and the real node runs its pods."""
    name = f"real-{request.node.name[5:30].replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    with fresh_namespace(api, name):
        yield name


def spec(image: str, script: list[str], **extra: Any) -> dict[str, Any]:
    return {"image": image, "script": script, **PLACEMENT, **extra}


def finished(cijobs: CiJobs, namespace: str, name: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    status: dict[str, Any] = cijobs.wait_phase(namespace, name, timeout=timeout)["status"]
    return status


def build_log(cijobs: CiJobs, namespace: str, pod: str) -> str:
    text: str = cijobs.core.read_namespaced_pod_log(pod, namespace, container="build")
    return text


def kept_log(
    cijobs: CiJobs, namespace: str, job: str, ended: Callable[[dict[str, Any]], bool]
) -> str:
    """The build log of `job`'s first pod, once the kubelet has ended it (`ended`, on the
    pod's status) and kept it: a stopped attempt's log outlives it (docs/lifecycle.md)."""
    pod = f"{job}-1"
    cijobs.wait(
        namespace,
        job,
        lambda _: ended((cijobs.pod(namespace, pod) or {}).get("status") or {}),
        timeout=90,
        what="the pod ended by the kubelet",
    )
    return build_log(cijobs, namespace, pod)


def explain(cijobs: CiJobs, namespace: str, name: str) -> str:
    """What the pods and events say, for an assertion message."""
    out = []
    for pod in cijobs.pods(namespace, name):
        out.append(json.dumps(pod.get("status", {}), default=str)[:3000])
        for e in cijobs.events(namespace, pod["metadata"]["name"]):
            out.append(f"event {e['reason']}: {e['message']}")
    return "\n".join(out)


def test_script_runs_in_a_real_container_with_each_command_echoed(
    node: realnode.NodeState, start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator(env={"DOCKER_AUTH_CONFIG": node.docker_auth_config()})
    cijobs.create(
        namespace,
        "hello",
        spec(node.image("sh"), ["echo hello from $(uname -s)", "test -d /builds", "id -u"]),
    )
    status = finished(cijobs, namespace, "hello")
    assert status["phase"] == "Succeeded", explain(cijobs, namespace, "hello")
    log = build_log(cijobs, namespace, status["podName"])
    assert "$ echo hello from $(uname -s)\nhello from Linux\n" in log
    assert "$ id -u\n0\n" in log
    pod = cijobs.pod(namespace, status["podName"])
    assert pod is not None and pod["spec"]["nodeName"] == realnode.NODE_NAME


def test_private_image_pulled_with_the_jobs_docker_auth_config_and_its_digest_recorded(
    node: realnode.NodeState, start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator()
    cijobs.create(
        namespace,
        "private",
        spec(
            node.image("bash"),
            ['echo "bash $BASH_VERSION"'],
            variables={"DOCKER_AUTH_CONFIG": node.docker_auth_config()},
        ),
    )
    status = finished(cijobs, namespace, "private")
    assert status["phase"] == "Succeeded", explain(cijobs, namespace, "private")
    assert "bash 5." in build_log(cijobs, namespace, status["podName"])
    build = next(i for i in status["images"] if i["container"] == "build")
    assert build["imageID"].endswith("@" + node.digest("bash"))


def test_private_image_without_credentials_ends_image_pull_failed(
    node: realnode.NodeState, start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator({"imagePullGraceSeconds": 5})
    # `always`: a node that pulled the image before would otherwise run it without asking the
    # registry (the kubelet's KubeletEnsureSecretPulledImages gate is off by default).
    image = {"name": node.image("bash"), "pullPolicy": "always"}
    cijobs.create(namespace, "nocreds", {**spec(node.image("bash"), ["true"]), "image": image})
    status = finished(cijobs, namespace, "nocreds")
    assert (status["phase"], status.get("reason")) == ("Failed", "ImagePullFailed"), status


def test_failing_line_exit_code_is_the_jobs_and_after_script_runs(
    node: realnode.NodeState, start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator(env={"DOCKER_AUTH_CONFIG": node.docker_auth_config()})
    cijobs.create(
        namespace,
        "fails",
        spec(
            node.image("sh"),
            ["echo before", "sh -c 'exit 7'", "echo never"],
            afterScript=["echo after-script ran"],
        ),
    )
    status = finished(cijobs, namespace, "fails")
    assert (status["phase"], status.get("exitCode")) == ("Failed", 7), explain(
        cijobs, namespace, "fails"
    )
    log = build_log(cijobs, namespace, status["podName"])
    assert "before" in log and "never\n" not in log.replace("$ echo never\n", "")
    assert "after-script ran" in log
    # the reason on the resource: the failed script's last lines, as the kubelet kept them
    assert "$ sh -c 'exit 7'" in status["logTail"], status
    assert status["logTail"] in log


def test_service_reached_by_alias_and_derived_host_name(
    node: realnode.NodeState, start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator(env={"DOCKER_AUTH_CONFIG": node.docker_auth_config()})
    derived = "127.0.0.1-cijob-http"
    script = [
        # The service is a native sidecar: it may still be binding its port.
        "for i in $(seq 50); do wget -qO- http://web:8080/ && break; sleep 0.2; done",
        "wget -qO- http://web:8080/",
        f"wget -qO- http://{derived}:8080/",
    ]
    cijobs.create(
        namespace,
        "svc",
        spec(node.image("sh"), script, services=[{"name": node.image("http"), "alias": "web"}]),
    )
    status = finished(cijobs, namespace, "svc")
    assert status["phase"] == "Succeeded", explain(cijobs, namespace, "svc")
    log = build_log(cijobs, namespace, status["podName"])
    assert log.count("hello from the cijob test service") >= 3


def test_entrypoints_daemon_needs_an_override_wrapper_does_not(
    node: realnode.NodeState, start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator(env={"DOCKER_AUTH_CONFIG": node.docker_auth_config()})
    daemon = node.image("super-sql")
    cijobs.create(
        namespace,
        "empty-ep",
        {**spec(daemon, ["super-sql --version"]), "image": {"name": daemon, "entrypoint": [""]}},
    )
    cijobs.create(
        namespace,
        "shell-ep",
        {
            **spec(daemon, ["super-sql --version"]),
            "image": {"name": daemon, "entrypoint": ["/bin/sh", "-c"]},
        },
    )
    cijobs.create(
        namespace, "wrapper", spec(node.image("wrapper"), ['echo "wrapped by $WRAPPED_BY"'])
    )
    cijobs.create(namespace, "no-override", spec(daemon, ["super-sql --version"], timeout="10s"))
    for name in ("empty-ep", "shell-ep"):
        status = finished(cijobs, namespace, name)
        assert status["phase"] == "Succeeded", explain(cijobs, namespace, name)
        assert "super-sql 0.0.1-experimental" in build_log(cijobs, namespace, status["podName"])
    status = finished(cijobs, namespace, "wrapper")
    assert status["phase"] == "Succeeded", explain(cijobs, namespace, "wrapper")
    assert "wrapped by entrypoint.sh" in build_log(cijobs, namespace, status["podName"])
    # Without an override the daemon ignores the script and never exits: the job times out.
    status = finished(cijobs, namespace, "no-override", timeout=TIMEOUT)
    assert (status["phase"], status.get("reason")) == ("Failed", "Timeout"), status


def test_cancel_stops_a_really_running_script(
    node: realnode.NodeState, start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator(env={"DOCKER_AUTH_CONFIG": node.docker_auth_config()})
    after = ['echo "after_script saw CI_JOB_STATUS=$CI_JOB_STATUS"']
    cijobs.create(
        namespace, "long", spec(node.image("sh"), ["echo started", "sleep 600"], afterScript=after)
    )
    cijobs.wait_phase(namespace, "long", "Running", timeout=TIMEOUT)
    began = time.monotonic()
    cijobs.patch_spec(namespace, "long", {"cancel": True})
    status = finished(cijobs, namespace, "long", timeout=60)
    assert status["phase"] == "Canceled", status
    assert time.monotonic() - began < 45
    # Stopped, not deleted (docs/lifecycle.md): the kubelet ends the pod past its lowered
    # deadline and keeps it, so its log is still there to read.
    log = kept_log(cijobs, namespace, "long", lambda st: st.get("reason") == "DeadlineExceeded")
    assert "started" in log
    # GitLab's after_script on cancel: the launcher stopped the script, then ran it
    assert "after_script saw CI_JOB_STATUS=canceled" in log, log


def test_operators_config_json_credentials_and_a_wrong_digest_is_refused(
    node: realnode.NodeState,
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(node.docker_auth_config())
    start_operator({"imagePullGraceSeconds": 5}, env={"HOME": str(home)})
    pinned = f"{node.image('wrapper').rsplit(':', 1)[0]}@{node.digest('wrapper')}"
    wrong = f"{node.image('wrapper').rsplit(':', 1)[0]}@sha256:{'0' * 64}"
    cijobs.create(namespace, "pinned", spec(pinned, ["echo pinned ok"]))
    cijobs.create(namespace, "wrong", spec(wrong, ["echo never"]))
    status = finished(cijobs, namespace, "pinned")
    assert status["phase"] == "Succeeded", explain(cijobs, namespace, "pinned")
    assert status["images"][0]["imageID"].endswith("@" + node.digest("wrapper"))
    status = finished(cijobs, namespace, "wrong")
    assert (status["phase"], status.get("reason")) == ("Failed", "ImagePullFailed"), status


def test_timed_out_jobs_log_stays_readable_and_after_script_ran(
    node: realnode.NodeState, start_operator: OperatorFactory, cijobs: CiJobs, namespace: str
) -> None:
    start_operator(env={"DOCKER_AUTH_CONFIG": node.docker_auth_config()})
    after = ['echo "after_script saw CI_JOB_STATUS=$CI_JOB_STATUS"']
    cijobs.create(
        namespace,
        "slow",
        spec(node.image("sh"), ["echo started", "sleep 600"], afterScript=after, timeout="5s"),
    )
    status = finished(cijobs, namespace, "slow")
    assert (status["phase"], status.get("reason")) == ("Failed", "Timeout"), status
    # Stopped, not deleted: the pod is kept, and so is its log.
    log = kept_log(cijobs, namespace, "slow", lambda st: st.get("phase") == "Failed")
    assert "started" in log
    # docs/lifecycle.md: a timed-out job's after_script runs too (and sees `canceled`)
    assert "after_script saw CI_JOB_STATUS=" in log, log


def test_archived_log_of_each_container_equals_kubectl_logs_and_50_mib_is_capped(
    node: realnode.NodeState,
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
    tmp_path: Path,
) -> None:
    root = tmp_path / "archive"
    start_operator(
        {"logArchive": {"url": f"file://{root}"}},
        env={"DOCKER_AUTH_CONFIG": node.docker_auth_config()},
    )
    script = [
        "for i in $(seq 50); do wget -qO- http://web:8080/ && break; sleep 0.2; done",
        "echo done with the service",
    ]
    services = [{"name": node.image("http"), "alias": "web"}]
    cijobs.create(namespace, "arch", spec(node.image("sh"), script, services=services))
    # 50 MiB of output: 52428800 bytes of 1 KiB lines (1023 characters and a newline)
    big = ["yes \"$(head -c 1023 /dev/zero | tr '\\0' x)\" | head -c 52428800"]
    cijobs.create(namespace, "big", spec(node.image("sh"), big))
    for name in ("arch", "big"):
        cijobs.wait(
            namespace,
            name,
            lambda j: (j.get("status") or {}).get("logs") is not None,
            timeout=TIMEOUT * 2,
            what="archived logs",
        )
    status = finished(cijobs, namespace, "arch")
    assert status["phase"] == "Succeeded", explain(cijobs, namespace, "arch")
    assert [e["container"] for e in status["logs"]] == ["build", "web"]
    for entry in status["logs"]:
        stored = Path(entry["url"].removeprefix("file://")).read_text()
        served: str = cijobs.core.read_namespaced_pod_log(
            "arch-1", namespace, container=entry["container"]
        )
        assert stored == served and entry["bytes"] == len(stored.encode())
        assert entry["truncated"] is False
    assert "done with the service" in Path(status["logs"][0]["url"][7:]).read_text()
    status = finished(cijobs, namespace, "big")
    (build,) = status["logs"]
    assert build["truncated"] is True and build["bytes"] <= 16 * 1024 * 1024
    stored_bytes = Path(build["url"][7:]).read_bytes()
    assert len(stored_bytes) == build["bytes"]
    head, marker = stored_bytes.rsplit(b"\n[cijob: log truncated", 1)
    assert set(head.split(b"\n")[-1]) == {ord("x")} and b"logArchive.maxBytes" in marker
    served_head = cijobs.core.read_namespaced_pod_log(
        "big-1", namespace, container="build", limit_bytes=len(head)
    )
    assert served_head.encode() == head
