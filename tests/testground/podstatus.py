"""Pod status documents as the kubelet generates them (pkg/kubelet/kubelet_pods.go, status/)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from testground import images
from testground import reasons as r

Json = dict[str, Any]
KUBELET_CONDITIONS = (
    r.POD_READY_TO_START_CONTAINERS,
    r.INITIALIZED,
    r.READY,
    r.CONTAINERS_READY,
    r.POD_SCHEDULED,
)
EPOCH = "1970-01-01T00:00:00Z"  # metav1.Time of a container that never started


def now() -> str:
    """metav1.Time as the API serialises it: RFC 3339, whole seconds, UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class State:
    """One container's state: waiting, running or terminated, as in core/v1 ContainerState."""

    kind: str  # "waiting" | "running" | "terminated"
    reason: str = ""
    message: str = ""
    exit_code: int = 0
    started_at: str = ""
    finished_at: str = ""
    # The kubelet's view beyond the state: the startup probe has passed (None: when running,
    # as probes are taken to pass at once), restarts so far, and the last run's end.
    started: bool | None = None
    restarts: int = 0
    last: State | None = None

    @property
    def created(self) -> bool:
        """Whether the runtime has a container for it (so it has an ID and an image digest)."""
        if self.kind == "waiting":
            return False
        return not (self.kind == "terminated" and self.reason == r.CONTAINER_STATUS_UNKNOWN)

    def to_api(self) -> Json:
        if self.kind == "waiting":
            w: Json = {"reason": self.reason}
            if self.message:
                w["message"] = self.message
            return {"waiting": w}
        if self.kind == "running":
            return {"running": {"startedAt": self.started_at}}
        t: Json = {"exitCode": self.exit_code, "reason": self.reason}
        if self.message:
            t["message"] = self.message
        if self.started_at:
            t["startedAt"] = self.started_at
        if self.finished_at:
            t["finishedAt"] = self.finished_at
        return {"terminated": t}


def waiting(reason: str, message: str = "") -> State:
    return State("waiting", reason=reason, message=message)


def running(started_at: str) -> State:
    return State("running", started_at=started_at)


def terminated(
    exit_code: int, started_at: str, finished_at: str, reason: str | None = None, message: str = ""
) -> State:
    """A finished container; the reason defaults to containerd's Completed / Error."""
    if reason is None:
        reason = r.COMPLETED if exit_code == 0 else r.ERROR
    return State("terminated", reason, message, exit_code, started_at, finished_at)


def ended(before: State, exit_code: int, started_at: str, finished_at: str) -> State:
    """`before` terminated, keeping its restarts and last run (a restarted sidecar's end)."""
    return replace(
        terminated(exit_code, started_at, finished_at), restarts=before.restarts, last=before.last
    )


def never_located() -> State:
    """TerminatePod's state for a container that never ran when its pod is terminated."""
    return State(
        "terminated", r.CONTAINER_STATUS_UNKNOWN, r.CONTAINER_NOT_LOCATED, r.SIGKILL_EXIT_CODE
    )


def is_sidecar(container: Mapping[str, Any]) -> bool:
    """A native sidecar: an init container with restartPolicy Always."""
    return container.get("restartPolicy") == "Always"


def container_id(pod_uid: str, name: str) -> str:
    """A stable fake containerd ID for one container of one pod."""
    return "containerd://" + hashlib.sha256(f"{pod_uid}/{name}".encode()).hexdigest()


@dataclass
class PodView:
    """What the simulated node knows about a pod at one moment; build_status renders it."""

    phase: str
    states: dict[str, State]
    sandbox_ready: bool
    host_ip: str
    pod_ip: str | None
    start_time: str
    reason: str | None = None
    message: str | None = None
    disruption_message: str | None = None  # set: add the DisruptionTarget condition
    extra: Json = field(default_factory=dict)


def _names(names: list[str]) -> str:
    return " ".join(names)  # Go's %s of a []string is "[a b]"; the brackets are in the format


def _container_status(
    c: Mapping[str, Any], state: State, pod: Mapping[str, Any], init: bool
) -> Json:
    created = state.created
    sidecar = init and is_sidecar(c)
    started = state.kind == "running" if state.started is None else state.started
    if init and not sidecar:
        ready = state.kind == "terminated" and state.exit_code == 0
    else:
        ready = state.kind == "running" and started
    image = c.get("image", "")
    s: Json = {
        "name": c["name"],
        "state": state.to_api(),
        "lastState": state.last.to_api() if state.last is not None else {},
        "ready": ready,
        "restartCount": state.restarts,
        "image": image,
        "imageID": "",
        "started": started,
    }
    if created:
        try:
            ref = images.parse(image)
            s["image"], s["imageID"] = ref.familiar, ref.image_id
        except images.InvalidReference:
            pass
        s["containerID"] = container_id(pod["metadata"]["uid"], c["name"])
        if state.kind == "terminated":
            s["state"]["terminated"]["containerID"] = s["containerID"]
        # InPlacePodVerticalScaling (beta, on in 1.34): the runtime-reported resources.
        resources = c.get("resources") or {}
        s["resources"] = {k: v for k, v in resources.items() if k in ("limits", "requests")}
        if resources.get("requests"):
            s["allocatedResources"] = resources["requests"]
        s["user"] = {"linux": _user(c, pod)}
    mounts = []
    for m in c.get("volumeMounts") or []:
        vm: Json = {"name": m["name"], "mountPath": m["mountPath"]}
        if m.get("readOnly"):
            vm["readOnly"] = True
            vm["recursiveReadOnly"] = "Disabled"
        mounts.append(vm)
    if mounts:
        s["volumeMounts"] = mounts
    return s


def _user(c: Mapping[str, Any], pod: Mapping[str, Any]) -> Json:
    # SupplementalGroupsPolicy (beta): the identity the process runs as, as containerd reports.
    psc = pod["spec"].get("securityContext") or {}
    csc = c.get("securityContext") or {}
    uid = csc.get("runAsUser", psc.get("runAsUser", 0))
    gid = csc.get("runAsGroup", psc.get("runAsGroup", 0))
    groups = sorted({gid, *(psc.get("supplementalGroups") or [])})
    return {"uid": uid, "gid": gid, "supplementalGroups": groups}


def _condition(ctype: str, status: bool, reason: str = "", message: str = "") -> Json:
    c: Json = {"type": ctype, "status": "True" if status else "False"}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _ready_conditions(
    pod: Mapping[str, Any], view: PodView, existing: list[Json]
) -> tuple[Json, Json]:
    # status/generate.go: GenerateContainersReadyCondition and GeneratePodReadyCondition.
    spec = pod["spec"]
    sidecars = [c for c in spec.get("initContainers") or [] if is_sidecar(c)]
    names = [c["name"] for c in [*sidecars, *spec["containers"]]]
    unready = [n for n in names if view.states[n].kind != "running"]
    if view.phase in ("Succeeded", "Failed"):
        reason = r.POD_COMPLETED if view.phase == "Succeeded" else r.POD_FAILED
        cr = _condition(r.CONTAINERS_READY, False, reason)
    elif unready:
        msg = r.UNREADY_MESSAGE.format(names=_names(unready))
        cr = _condition(r.CONTAINERS_READY, False, r.CONTAINERS_NOT_READY, msg)
    else:
        cr = _condition(r.CONTAINERS_READY, True)
    if cr["status"] != "True":
        ready = {**cr, "type": r.READY}
        return ready, cr
    gate_messages = []
    by_type = {c["type"]: c for c in existing}
    for gate in spec.get("readinessGates") or []:
        got = by_type.get(gate["conditionType"])
        if got is None:
            gate_messages.append(
                f"corresponding condition of pod readiness gate {images.goq(gate['conditionType'])}"
                " does not exist."
            )
        elif got.get("status") != "True":
            gate_messages.append(
                f"the status of pod readiness gate {images.goq(gate['conditionType'])} is not "
                f'"True", but {got.get("status")}'
            )
    if gate_messages:
        return _condition(r.READY, False, "ReadinessGatesNotReady", ", ".join(gate_messages)), cr
    return _condition(r.READY, True), cr


def _initialized_condition(pod: Mapping[str, Any], view: PodView) -> Json:
    # status/generate.go: GeneratePodInitializedCondition.
    spec = pod["spec"]
    if view.phase == "Succeeded":
        return _condition(r.INITIALIZED, True, r.POD_COMPLETED)
    if any(view.states[c["name"]].kind != "waiting" for c in spec["containers"]):
        return _condition(r.INITIALIZED, True)
    incomplete = []
    for c in spec.get("initContainers") or []:
        st = view.states[c["name"]]
        if is_sidecar(c):
            done = st.kind == "running"
        else:
            done = st.kind == "terminated" and st.exit_code == 0
        if not done:
            incomplete.append(c["name"])
    if incomplete:
        msg = r.INCOMPLETE_MESSAGE.format(names=_names(incomplete))
        return _condition(r.INITIALIZED, False, r.CONTAINERS_NOT_INITIALIZED, msg)
    return _condition(r.INITIALIZED, True)


def build_status(
    pod: Mapping[str, Any], view: PodView, previous: Mapping[str, Any] | None, at: str
) -> Json:
    """The full pod status the kubelet would write for `view`.

    `previous` is the status last written (or the pod's current one): conditions whose status
    did not change keep their lastTransitionTime, as the status manager does.
    """
    spec = pod["spec"]
    generation = pod["metadata"].get("generation", 1)
    old_conditions: list[Json] = list((previous or {}).get("conditions") or [])
    current = list((pod.get("status") or {}).get("conditions") or [])
    # Conditions the kubelet does not own (a readiness gate's, the scheduler's) are kept.
    conditions = [c for c in current if c["type"] not in KUBELET_CONDITIONS]
    conditions = [c for c in conditions if c["type"] != r.DISRUPTION_TARGET]
    if view.disruption_message is not None:
        conditions.append(
            _condition(r.DISRUPTION_TARGET, True, r.TERMINATION_BY_KUBELET, view.disruption_message)
        )
    else:
        conditions.extend(c for c in old_conditions if c["type"] == r.DISRUPTION_TARGET)
    ready, containers_ready = _ready_conditions(pod, view, current)
    conditions += [
        _condition(r.POD_READY_TO_START_CONTAINERS, view.sandbox_ready),
        _initialized_condition(pod, view),
        ready,
        containers_ready,
        _condition(r.POD_SCHEDULED, True),
    ]
    old_by_type = {c["type"]: c for c in [*current, *old_conditions]}
    for c in conditions:
        old = old_by_type.get(c["type"])
        if old is not None and old.get("status") == c["status"] and old.get("lastTransitionTime"):
            c["lastTransitionTime"] = old["lastTransitionTime"]
        else:
            c.setdefault("lastTransitionTime", at)
        c.setdefault("lastProbeTime", None)
        c["observedGeneration"] = generation  # PodObservedGenerationTracking (beta, on)

    status: Json = {
        "observedGeneration": generation,
        "phase": view.phase,
        "conditions": conditions,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "startTime": view.start_time,
        "containerStatuses": [
            _container_status(c, view.states[c["name"]], pod, init=False)
            for c in spec["containers"]
        ],
    }
    if spec.get("initContainers"):
        status["initContainerStatuses"] = [
            _container_status(c, view.states[c["name"]], pod, init=True)
            for c in spec["initContainers"]
        ]
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.reason is not None:
        status["reason"] = view.reason
    if view.message is not None:
        status["message"] = view.message
    qos = (pod.get("status") or {}).get("qosClass")
    if qos:
        status["qosClass"] = qos
    status.update(view.extra)
    return status


def phase_of(pod: Mapping[str, Any], states: Mapping[str, State], terminal: bool) -> str:
    """getPhase (kubelet_pods.go) for restartPolicy Never pods, which is all this node runs."""
    spec = pod["spec"]
    pending_init = 0
    for c in spec.get("initContainers") or []:
        st = states[c["name"]]
        if is_sidecar(c):
            if st.kind != "running" and st.kind != "terminated":
                pending_init += 1
            continue
        if st.kind == "terminated" and st.exit_code != 0:
            return "Failed"
        if st.kind != "terminated":
            pending_init += 1
    main = [states[c["name"]] for c in spec["containers"]]
    started = any(s.kind != "waiting" for s in main)
    if (pending_init and not started) or any(s.kind == "waiting" for s in main):
        if terminal:
            return "Failed"  # TerminatePod: a pod that ends before it ran has failed
        return "Pending"
    if any(s.kind == "running" for s in main):
        return "Running"
    return "Succeeded" if all(s.exit_code == 0 for s in main) else "Failed"
