"""What the simulated node does with each pod: behaviours, and the plans that choose them."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace

JOB_LABEL = "cijob.dev/job"
ATTEMPT_LABEL = "cijob.dev/attempt"

IMAGE_PULL = "image-pull"  # ErrImagePull, then ImagePullBackOff; the pod stays Pending
INVALID_IMAGE = "invalid-image"  # InvalidImageName; the pod stays Pending
CREATE_CONFIG = "create-config"  # CreateContainerConfigError; the pod stays Pending
OOM = "oom"  # the container is OOMKilled (137) after run_seconds
EVICTED = "evicted"  # the node evicts the pod under memory pressure after run_seconds
NO_SHELL = "no-shell"  # the runtime cannot exec the command: StartError, 128
FAILURES = (IMAGE_PULL, INVALID_IMAGE, CREATE_CONFIG, OOM, EVICTED, NO_SHELL)
WAITING_FAILURES = (IMAGE_PULL, INVALID_IMAGE, CREATE_CONFIG)


@dataclass(frozen=True)
class Behaviour:
    """How one pod's containers run on the simulated node.

    The default exits 0 at once. `container` names the container a failure or the exit code
    applies to (default: the first of spec.containers, i.e. `build`); the other main containers
    exit 0 and sidecars exit `sidecar_exit_code` when the pod ends.
    """

    exit_code: int = 0
    run_seconds: float = 0.0
    hold: bool = False  # keep running until KubeSim.release()
    failure: str | None = None  # one of FAILURES
    container: str | None = None
    message: str | None = None  # replaces the kubelet's message for the failure
    backoff_after: float = 0.5  # seconds from ErrImagePull to ImagePullBackOff
    sidecar_exit_code: int = 0  # services usually exit 0 on SIGTERM
    sigterm_exit_code: int = 143  # the build container's code when the pod is deleted
    # How long the script runs on after SIGTERM; past the pod's grace period it is SIGKILLed.
    sigterm_seconds: float = 0.0
    command: str | None = None  # what NO_SHELL reports missing; default: command[0], else sh
    # Sidecars whose startup probe never succeeds: the kubelet restarts each once its
    # failureThreshold x periodSeconds are up, and starts nothing after it.
    never_ready: tuple[str, ...] = ()
    # (sidecar, times, reason): it ends `times` times while the build runs, each time
    # restarted by the kubelet; reason OOMKilled (exit 137) or Error (exit 1).
    service_failures: tuple[tuple[str, int, str], ...] = ()
    clone_error: str | None = None  # the `clone` init container exits 1 with this message
    clone_commit: str | None = None  # the commit `clone` reports (default: the job's, or made up)
    log: str | None = None  # the build container's log (kubectl logs); default: one line

    def __post_init__(self) -> None:
        if self.failure is not None and self.failure not in FAILURES:
            raise ValueError(f"unknown failure {self.failure!r}; choose one of {FAILURES}")
        if self.run_seconds < 0:
            raise ValueError("run_seconds must be >= 0")

    @classmethod
    def succeeds(cls, run_seconds: float = 0.0) -> Behaviour:
        return cls(run_seconds=run_seconds)

    @classmethod
    def exits(cls, code: int, run_seconds: float = 0.0) -> Behaviour:
        return cls(exit_code=code, run_seconds=run_seconds)

    @classmethod
    def held(cls, exit_code: int = 0) -> Behaviour:
        """Runs until released; then exits `exit_code` unless release() says otherwise."""
        return cls(exit_code=exit_code, hold=True)

    @classmethod
    def image_pull_failure(
        cls, message: str | None = None, container: str | None = None
    ) -> Behaviour:
        return cls(failure=IMAGE_PULL, message=message, container=container)

    @classmethod
    def invalid_image(cls, message: str | None = None, container: str | None = None) -> Behaviour:
        return cls(failure=INVALID_IMAGE, message=message, container=container)

    @classmethod
    def create_config_error(
        cls, message: str | None = None, container: str | None = None
    ) -> Behaviour:
        return cls(failure=CREATE_CONFIG, message=message, container=container)

    @classmethod
    def oom_killed(cls, run_seconds: float = 0.0) -> Behaviour:
        return cls(failure=OOM, run_seconds=run_seconds)

    @classmethod
    def evicted(cls, run_seconds: float = 0.0, message: str | None = None) -> Behaviour:
        return cls(failure=EVICTED, run_seconds=run_seconds, message=message)

    @classmethod
    def no_shell(cls, command: str | None = None) -> Behaviour:
        return cls(failure=NO_SHELL, command=command)

    @classmethod
    def clone_fails(cls, message: str) -> Behaviour:
        """The clone init container fails (an unknown ref, refused credentials, ...)."""
        return cls(clone_error=message)

    def but(self, **changes: object) -> Behaviour:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


class Plans:
    """Behaviours chosen by tests, looked up when the node first sees a pod (thread-safe).

    Precedence: the pod's namespace+name, then namespace+job label+attempt label, then
    namespace+job label for any attempt, then the default.
    """

    def __init__(
        self,
        default: Behaviour | None = None,
        job_label: str = JOB_LABEL,
        attempt_label: str = ATTEMPT_LABEL,
    ) -> None:
        self.default = default or Behaviour()
        self.job_label = job_label
        self.attempt_label = attempt_label
        self._lock = threading.Lock()
        self._by_pod: dict[tuple[str, str], Behaviour] = {}
        self._by_job: dict[tuple[str, str, str | None], Behaviour] = {}

    def plan(self, namespace: str, pod_name: str, behaviour: Behaviour) -> None:
        with self._lock:
            self._by_pod[(namespace, pod_name)] = behaviour

    def plan_job(
        self, namespace: str, job: str, behaviour: Behaviour, attempt: int | None = None
    ) -> None:
        with self._lock:
            key = (namespace, job, None if attempt is None else str(attempt))
            self._by_job[key] = behaviour

    def lookup(self, namespace: str, pod_name: str, labels: Mapping[str, str]) -> Behaviour:
        with self._lock:
            found = self._by_pod.get((namespace, pod_name))
            if found is not None:
                return found
            job = labels.get(self.job_label)
            if job is not None:
                for attempt in (labels.get(self.attempt_label), None):
                    found = self._by_job.get((namespace, job, attempt))
                    if found is not None:
                        return found
            return self.default

    def forget(self, namespace: str) -> None:
        """Drops every plan for a namespace (a test's namespace is gone)."""
        with self._lock:
            self._by_pod = {k: v for k, v in self._by_pod.items() if k[0] != namespace}
            self._by_job = {k: v for k, v in self._by_job.items() if k[0] != namespace}
