"""Every reason and message the simulated kubelet writes, copied from where a real node makes them.

Sources are Kubernetes v1.34.4 (k8s.io/kubernetes, k8s.io/api) and containerd's CRI plugin, the
runtime behind `containerd://` container IDs. Tests and the operator should match on these.
"""

from __future__ import annotations

# --- Container waiting reasons ---------------------------------------------------------------
# pkg/kubelet/kubelet_pods.go: the default waiting state of a container the kubelet has not
# started; PodInitializing instead when the pod has any init container (sidecars included).
CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"

# pkg/kubelet/images/types.go
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
INVALID_IMAGE_NAME = "InvalidImageName"
# pkg/kubelet/kuberuntime/kuberuntime_container.go (ErrCreateContainerConfig)
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"

# What containerd returns for a pull of an image that does not exist or needs credentials; the
# kubelet puts the CRI error text verbatim into the waiting message (images/image_manager.go,
# evalCRIPullErr).
PULL_ACCESS_DENIED = (
    "rpc error: code = NotFound desc = failed to pull and unpack image {ref}: "
    "failed to resolve reference {ref}: pull access denied, repository does not exist or may "
    "require authorization: server message: insufficient_scope: authorization failed"
)
# images/image_manager.go: during back-off: `Back-off pulling image %q`, then ": " and the
# previous pull's "<reason>: <message>".
BACK_OFF_PULLING = "Back-off pulling image {image}: {reason}: {message}"
# images/image_manager.go (applyDefaultImageTag) wrapping pkg/util/parsers: see images.py.

# pkg/kubelet/kubelet_pods.go (makeEnvironmentVariables) and the secret/configmap managers.
SECRET_NOT_FOUND = 'secret "{name}" not found'
CONFIGMAP_NOT_FOUND = 'configmap "{name}" not found'
SECRET_KEY_NOT_FOUND = "couldn't find key {key} in Secret {namespace}/{name}"
CONFIGMAP_KEY_NOT_FOUND = "couldn't find key {key} in ConfigMap {namespace}/{name}"

# --- Container terminated reasons (containerd internal/cri/server/helpers.go) ----------------
COMPLETED = "Completed"  # completeExitReason: exit code 0
ERROR = "Error"  # errorExitReason: any other exit code
OOM_KILLED = "OOMKilled"  # oomExitReason: the cgroup's OOM killer; exit code 137 (SIGKILL)
OOM_EXIT_CODE = 137
# errorStartReason / errorStartExitCode: the task could not start, e.g. no such executable.
START_ERROR = "StartError"
START_ERROR_EXIT_CODE = 128
# The containerd (v1.7/v2) + runc (>= 1.2) text for a command that is not in the image.
EXECUTABLE_NOT_FOUND = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
    "runc create failed: unable to start container process: error during container init: "
    'exec: "{command}": executable file not found in $PATH: unknown'
)
# The same for a command given by absolute path, which runc stats instead of searching $PATH.
NO_SUCH_EXECUTABLE = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
    "runc create failed: unable to start container process: error during container init: "
    'exec: "{command}": stat {command}: no such file or directory: unknown'
)
SIGTERM_EXIT_CODE = 143  # 128 + SIGTERM: a shell killed on pod deletion
SIGKILL_EXIT_CODE = 137  # 128 + SIGKILL: killed without grace (eviction)
# pkg/kubelet/status/status_manager.go (TerminatePod) for containers that never reported.
CONTAINER_STATUS_UNKNOWN = "ContainerStatusUnknown"
CONTAINER_NOT_LOCATED = "The container could not be located when the pod was terminated"

# --- Pod conditions (pkg/kubelet/status/generate.go, k8s.io/api core/v1 types.go) -----------
POD_SCHEDULED = "PodScheduled"
POD_READY_TO_START_CONTAINERS = "PodReadyToStartContainers"
INITIALIZED = "Initialized"
READY = "Ready"
CONTAINERS_READY = "ContainersReady"
DISRUPTION_TARGET = "DisruptionTarget"
CONTAINERS_NOT_READY = "ContainersNotReady"
CONTAINERS_NOT_INITIALIZED = "ContainersNotInitialized"
POD_COMPLETED = "PodCompleted"
POD_FAILED = "PodFailed"
UNREADY_MESSAGE = "containers with unready status: [{names}]"  # Go's %s of a []string
INCOMPLETE_MESSAGE = "containers with incomplete status: [{names}]"
TERMINATION_BY_KUBELET = "TerminationByKubelet"  # core/v1 PodReasonTerminationByKubelet

# --- Pod phase reasons -------------------------------------------------------------------------
# pkg/kubelet/active_deadline.go
DEADLINE_EXCEEDED = "DeadlineExceeded"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
# pkg/kubelet/eviction/helpers.go: Reason, nodeLowMessageFmt, thresholdMetMessageFmt and
# containerMessageFmt, in the order evictionMessage() appends them.
EVICTED = "Evicted"
EVICTION_MESSAGE = (
    "The node was low on resource: {resource}. Threshold quantity: {threshold}, "
    "available: {available}. Container {container} was using {usage}, request is {request}, "
    "has larger consumption of {resource}. "
)

# --- Node (pkg/kubelet/nodestatus/setters.go) ---------------------------------------------------
NODE_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"
     " available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)  # fmt: skip
