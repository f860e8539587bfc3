"""Helpers for operator tests: the operator as a real process, and CiJob calls."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from cijob.api import policy
from cijob.render.names import TRACKING_FINALIZER
from testground.waits import wait_for

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "cijob.dev", "v1alpha1", "cijobs"
TERMINAL = ("Succeeded", "Failed", "Canceled")
SINGLE_TENANT = {policy.INLINE_AUTH_LABEL: policy.INLINE_AUTH_ALLOWED}
Json = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator:
    """`cijob-operator` started as users start it, watching one namespace, logging to a file."""

    def __init__(
        self,
        kubeconfig: str,
        namespaces: list[str],
        workdir: Path,
        settings: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        log_level: str = "debug",
        extra_args: list[str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = namespaces
        self.workdir = workdir
        self.settings = dict(settings or {})
        self.env = dict(env or {})
        self.log_level = log_level
        self.extra_args = extra_args or []
        self.log_path = workdir / "operator.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = free_port()

    def start(self, timeout: float = 60.0) -> Operator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "config.yaml"
        cfg.write_text(yaml.safe_dump(self.settings))
        args = [
            sys.executable,
            "-m",
            "cijob.main",
            "--kubeconfig",
            self.kubeconfig,
            "--config",
            str(cfg),
            "--health-port",
            str(self.port),
            "--health-host",
            "127.0.0.1",
            "--log-level",
            self.log_level,
        ]
        for ns in self.namespaces:
            args += ["--namespace", ns]
        args += self.extra_args
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'operator'}"}
        env.pop("DOCKER_AUTH_CONFIG", None)  # only what a test hands the operator
        env.update(self.env)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"operator not healthy in {timeout} s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when a node dies under the operator."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class CiJobs:
    """CiJob calls for tests, over the plain Kubernetes client."""

    def __init__(self, kubeconfig: str) -> None:
        self.api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def create(self, namespace: str, name: str, spec: Json, **meta: Any) -> Json:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CiJob",
            "metadata": {"name": name, **meta},
            "spec": spec,
        }
        result = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body
        )
        return cast(Json, result)

    def get(self, namespace: str, name: str) -> Json | None:
        try:
            result = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
            return cast(Json, result)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def patch_spec(self, namespace: str, name: str, spec: Json) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
        )

    def delete(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def wait(
        self,
        namespace: str,
        name: str,
        check: Callable[[Json], bool],
        timeout: float = 60.0,
        what: str = "condition",
    ) -> Json:
        deadline = time.monotonic() + timeout
        last: Json | None = None
        while time.monotonic() < deadline:
            last = self.get(namespace, name)
            if last is not None and check(last):
                return last
            time.sleep(0.1)
        raise AssertionError(f"CiJob {namespace}/{name}: no {what} in {timeout} s; last: {last}")

    def wait_phase(self, namespace: str, name: str, *phases: str, timeout: float = 60.0) -> Json:
        want = phases or TERMINAL
        return self.wait(
            namespace,
            name,
            lambda j: (j.get("status") or {}).get("phase") in want,
            timeout,
            f"phase in {want}",
        )

    def pod(self, namespace: str, name: str) -> Json | None:
        try:
            result: Json = self.api.sanitize_for_serialization(
                self.core.read_namespaced_pod(name, namespace)
            )
            return result
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def pods(self, namespace: str, job: str) -> list[Json]:
        items = self.core.list_namespaced_pod(namespace, label_selector=f"cijob.dev/job={job}")
        result: list[Json] = [self.api.sanitize_for_serialization(p) for p in items.items]
        return result

    def wait_event(
        self, namespace: str, name: str, reason: str, timeout: float = 30.0
    ) -> list[Json]:
        """The CiJob's events once one with `reason` is there: they are posted after the
        status write they announce, so a test that saw the status may be ahead of them."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(namespace, name)
            if any(e.get("reason") == reason for e in events) or time.monotonic() > deadline:
                return events
            time.sleep(0.1)

    def events(self, namespace: str, name: str) -> list[Json]:
        items = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        )
        result: list[Json] = [self.api.sanitize_for_serialization(e) for e in items.items]
        return result


@contextlib.contextmanager
def fresh_namespace(
    api: client.ApiClient, name: str, labels: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Namespace `name`, once its default ServiceAccount exists; deleted afterwards.

    Unless `labels` say otherwise it is a single-tenant namespace where a CiJob may carry
    DOCKER_AUTH_CONFIG inline, as the seed's jobs do (docs/pod-policy.md)."""
    core = client.CoreV1Api(api)
    labels = SINGLE_TENANT if labels is None else labels
    meta = client.V1ObjectMeta(name=name, labels=dict(labels))
    core.create_namespace(client.V1Namespace(metadata=meta))

    def has_default_sa() -> bool:
        try:
            core.read_namespaced_service_account("default", name)
            return True
        except ApiException as e:
            if e.status == 404:
                return False
            raise

    # The ServiceAccount admission plugin refuses pods until the controller has made it.
    wait_for(f"the default ServiceAccount in {name}", has_default_sa)
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as e:
            if e.status != 404:
                raise
        release_tracked_pods(core, name)


def release_tracked_pods(core: client.CoreV1Api, namespace: str) -> None:
    """Takes the operator's tracking finalizer off the job pods left in `namespace`, as an
    admin does once no operator runs (docs/lifecycle.md): a test's operator is stopped before
    its namespace goes, and the namespace would stay Terminating for every later test."""
    try:
        pods = core.list_namespaced_pod(namespace, label_selector="cijob.dev/job").items
    except ApiException as e:
        if e.status == 404:
            return
        raise
    # the documented command's strategic-merge directive: only our entry goes, race-free
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}
    for pod in pods:
        meta = pod.metadata
        if meta is not None and meta.name and TRACKING_FINALIZER in (meta.finalizers or []):
            try:
                core.patch_namespaced_pod(meta.name, namespace, patch)
            except ApiException as e:
                if e.status != 404:
                    raise
