"""The pod statuses the simulated kubelet renders, checked against the kubelet's own rules."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from testground import podstatus as ps
from testground import reasons as r

T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "2026-01-01T00:00:09Z"
Json = dict[str, Any]


def _pod(sidecar: bool = True, **spec: Any) -> Json:
    pod: Json = {
        "metadata": {"name": "j-1", "namespace": "ns", "uid": "u-1", "generation": 1},
        "spec": {
            "containers": [
                {
                    "name": "build",
                    "image": "ruby:3.3",
                    "volumeMounts": [
                        {"name": "token", "mountPath": "/var/run/secrets", "readOnly": True},
                        {"name": "work", "mountPath": "/builds"},
                    ],
                }
            ],
            **spec,
        },
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }
    if sidecar:
        pod["spec"]["initContainers"] = [
            {"name": "svc-0", "image": "postgres:16", "restartPolicy": "Always"}
        ]
    return pod


def _view(pod: Json, states: dict[str, ps.State], **kw: Any) -> ps.PodView:
    fields: Json = {
        "phase": ps.phase_of(pod, states, terminal=False),
        "states": states,
        "sandbox_ready": True,
        "host_ip": "127.0.0.1",
        "pod_ip": "10.244.0.2",
        "start_time": T0,
    }
    fields.update(kw)
    return ps.PodView(**fields)


def _conditions(status: Json) -> dict[str, Json]:
    return {c["type"]: c for c in status["conditions"]}


def test_kubesim_first_status_of_a_sidecar_pod() -> None:
    pod = _pod()
    states = {"svc-0": ps.waiting(r.POD_INITIALIZING), "build": ps.waiting(r.POD_INITIALIZING)}
    status = ps.build_status(pod, _view(pod, states, sandbox_ready=False, pod_ip=None), None, T0)
    assert status["phase"] == "Pending"
    assert "podIP" not in status
    c = _conditions(status)
    assert [x["type"] for x in status["conditions"]] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert c["PodReadyToStartContainers"]["status"] == "False"
    assert (c["Initialized"]["reason"], c["Initialized"]["message"]) == (
        "ContainersNotInitialized",
        "containers with incomplete status: [svc-0]",
    )
    assert c["Ready"]["message"] == "containers with unready status: [svc-0 build]"
    build = status["containerStatuses"][0]
    assert build["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert (build["image"], build["imageID"], build["ready"], build["started"]) == (
        "ruby:3.3",
        "",
        False,
        False,
    )
    assert "containerID" not in build
    assert status["qosClass"] == "BestEffort"


def test_kubesim_running_and_succeeded_statuses() -> None:
    pod = _pod()
    running = {"svc-0": ps.running(T1), "build": ps.running(T1)}
    first = ps.build_status(pod, _view(pod, running), None, T1)
    assert first["phase"] == "Running"
    assert all(c["status"] == "True" for c in first["conditions"])
    build = first["containerStatuses"][0]
    assert build["containerID"] == ps.container_id("u-1", "build")
    assert build["image"] == "docker.io/library/ruby:3.3"
    assert build["imageID"].startswith("docker.io/library/ruby@sha256:")
    assert build["volumeMounts"] == [
        {
            "name": "token",
            "mountPath": "/var/run/secrets",
            "readOnly": True,
            "recursiveReadOnly": "Disabled",
        },
        {"name": "work", "mountPath": "/builds"},
    ]
    done = {"svc-0": ps.terminated(0, T1, T2), "build": ps.terminated(0, T1, T2)}
    last = ps.build_status(pod, _view(pod, done, sandbox_ready=False), first, T2)
    assert last["phase"] == "Succeeded"
    c = _conditions(last)
    assert c["Initialized"] == {**c["Initialized"], "status": "True", "reason": "PodCompleted"}
    assert (c["Ready"]["status"], c["Ready"]["reason"]) == ("False", "PodCompleted")
    # The status manager keeps a condition's transition time while its status is unchanged.
    assert c["PodScheduled"]["lastTransitionTime"] == T1
    assert c["Ready"]["lastTransitionTime"] == T2
    term = last["containerStatuses"][0]["state"]["terminated"]
    assert term == {
        "exitCode": 0,
        "reason": "Completed",
        "startedAt": T1,
        "finishedAt": T2,
        "containerID": ps.container_id("u-1", "build"),
    }


def test_kubesim_failed_pod_conditions_and_disruption_target() -> None:
    pod = _pod(sidecar=False)
    states = {"build": ps.terminated(137, T1, T2)}
    view = _view(pod, states, reason="Evicted", message="low", disruption_message="low")
    status = ps.build_status(pod, view, None, T2)
    assert (status["phase"], status["reason"], status["message"]) == ("Failed", "Evicted", "low")
    c = _conditions(status)
    assert c["DisruptionTarget"]["reason"] == "TerminationByKubelet"
    assert status["conditions"][0]["type"] == "DisruptionTarget"
    assert c["ContainersReady"]["reason"] == "PodFailed"
    assert status["containerStatuses"][0]["state"]["terminated"]["reason"] == "Error"


def test_kubesim_readiness_gates() -> None:
    pod = _pod(sidecar=False, readinessGates=[{"conditionType": "example.com/ready"}])
    view = _view(pod, {"build": ps.running(T1)})
    c = _conditions(ps.build_status(pod, view, None, T1))
    assert c["ContainersReady"]["status"] == "True"
    assert (c["Ready"]["status"], c["Ready"]["reason"]) == ("False", "ReadinessGatesNotReady")
    assert c["Ready"]["message"] == (
        'corresponding condition of pod readiness gate "example.com/ready" does not exist.'
    )
    pod["status"]["conditions"] = [{"type": "example.com/ready", "status": "True"}]
    c = _conditions(ps.build_status(pod, view, None, T1))
    assert c["Ready"]["status"] == "True"
    assert c["example.com/ready"]["status"] == "True"


def test_kubesim_a_never_started_container_is_reported_as_the_status_manager_does() -> None:
    state = ps.never_located()
    assert not state.created
    assert state.to_api() == {
        "terminated": {
            "exitCode": 137,
            "reason": "ContainerStatusUnknown",
            "message": "The container could not be located when the pod was terminated",
        }
    }


STATES = st.sampled_from(
    [
        ps.waiting(r.CONTAINER_CREATING),
        ps.running(T1),
        ps.terminated(0, T1, T2),
        ps.terminated(1, T1, T2),
    ]
)


@given(build=STATES, sidecar=STATES)
def test_kubesim_phase_follows_get_phase(build: ps.State, sidecar: ps.State) -> None:
    pod = _pod()
    phase = ps.phase_of(pod, {"svc-0": sidecar, "build": build}, terminal=False)
    if build.kind == "waiting":
        assert phase == "Pending"
    elif build.kind == "running":
        assert phase == "Running"  # started regular containers make the pod initialized
    else:  # the sidecar never decides the outcome
        assert phase == ("Succeeded" if build.exit_code == 0 else "Failed")


@given(build=STATES, sidecar=STATES, sandbox=st.booleans())
def test_kubesim_status_always_names_every_container_and_condition_once(
    build: ps.State, sidecar: ps.State, sandbox: bool
) -> None:
    pod = _pod()
    states = {"svc-0": sidecar, "build": build}
    status = ps.build_status(pod, _view(pod, states, sandbox_ready=sandbox), None, T1)
    types = [c["type"] for c in status["conditions"]]
    assert sorted(types) == sorted(set(types))
    assert set(types) >= {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"}
    assert [s["name"] for s in status["containerStatuses"]] == ["build"]
    assert [s["name"] for s in status["initContainerStatuses"]] == ["svc-0"]
    for s in status["containerStatuses"] + status["initContainerStatuses"]:
        assert ("containerID" in s) == (next(iter(s["state"])) != "waiting")


def test_kubesim_a_sidecar_not_started_and_restarted_is_reported_as_the_kubelet_does() -> None:
    from dataclasses import replace

    pod = _pod()
    killed = ps.terminated(r.SIGKILL_EXIT_CODE, T0, T1)
    probing = replace(ps.running(T1), started=False, restarts=1, last=killed)
    states = {"svc-0": probing, "build": ps.waiting(r.POD_INITIALIZING)}
    status = ps.build_status(pod, _view(pod, states), None, T2)
    [svc] = status["initContainerStatuses"]
    assert (svc["started"], svc["ready"], svc["restartCount"]) == (False, False, 1)
    assert svc["lastState"]["terminated"]["exitCode"] == r.SIGKILL_EXIT_CODE
    assert status["phase"] == "Pending"
    # its end with the pod keeps the count, as the kubelet's status manager does
    ended = ps.ended(probing, 0, T1, T2)
    assert (ended.restarts, ended.last) == (1, killed)
