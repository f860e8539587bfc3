"""The log archive (docs/logs.md) against the real control plane, the kubelet simulator's
containerLogs endpoint (reached through the API server's pods/log proxy) and a real S3 server
(SeaweedFS on loopback), or a directory; `cijob logs` reading it back once the pod is gone."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import obstore
import pytest
from kubernetes import client

from integration.conftest import OperatorFactory
from integration.support import ROOT, CiJobs
from testground import seaweedfs
from testground.kubesim import KubeSim
from testground.plans import Behaviour
from testground.waits import wait_for

# CLI runs (a Python start each) are slow on a loaded 2-core machine: room beyond the default.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

SPEC: dict[str, Any] = {
    "image": "alpine:3.20",
    "script": ["make test"],
    "services": [{"name": "postgres:16", "alias": "db"}],
    "retry": {"max": 1},
}
MAX_BYTES = 4096
SECRET = "archive-s3"


def s3_settings(server: seaweedfs.S3Server, endpoint: str | None = None) -> dict[str, Any]:
    return {
        "logArchive": {
            "url": f"s3://{server.bucket}/ci",
            "s3": {
                "endpoint": endpoint or server.endpoint,
                "region": "us-east-1",
                "credentialsSecret": SECRET,
                "pathStyle": True,
            },
            "maxBytes": MAX_BYTES,
        }
    }


def credentials_secret(api: client.ApiClient, namespace: str, server: seaweedfs.S3Server) -> None:
    data = {"AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key}
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": SECRET},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        },
    )


def archived(cijobs: CiJobs, namespace: str, name: str, attempts: int = 1) -> dict[str, Any]:
    """The job's status once every attempt's logs are recorded."""

    def recorded(job: dict[str, Any]) -> bool:
        s = job.get("status") or {}
        earlier = [r for r in s.get("attempts") or [] if r.get("logs") is not None]
        return s.get("logs") is not None and len(earlier) >= attempts - 1

    job = cijobs.wait(namespace, name, recorded, timeout=60, what="archived logs")
    status: dict[str, Any] = job["status"]
    return status


def s3_object(server: seaweedfs.S3Server, url: str) -> bytes:
    prefix = f"s3://{server.bucket}/"
    assert url.startswith(prefix), url
    return bytes(obstore.get(seaweedfs.store(server), url[len(prefix) :]).bytes())


def cijob(kubeconfig: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    full = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(ROOT / "operator")}
    for k in [k for k in full if k.startswith("AWS_")]:
        del full[k]
    return subprocess.run(
        [sys.executable, "-m", "cijob.cli", *args],
        capture_output=True, text=True, timeout=300, env={**full, **(env or {})},
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_kubesim_archive_s3_each_container_of_each_attempt_and_cli_logs_read_it_back(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    cijobs: CiJobs,
    api: client.ApiClient,
    s3_server: seaweedfs.S3Server,
    kubeconfig: Path,
) -> None:
    credentials_secret(api, namespace, s3_server)
    op = start_operator(s3_settings(s3_server), env={"POD_NAMESPACE": namespace})
    first = "".join(f"line {i} of the first attempt\n" for i in range(400))  # > MAX_BYTES
    kubesim.plan_job(namespace, "twice", Behaviour.exits(1).but(log=first), attempt=1)
    kubesim.plan_job(namespace, "twice", Behaviour.succeeds().but(log="all green\n"), attempt=2)
    cijobs.create(namespace, "twice", SPEC)
    cijobs.wait_phase(namespace, "twice")
    status = archived(cijobs, namespace, "twice", attempts=2)
    assert status["phase"] == "Succeeded", status
    uid = cijobs.get(namespace, "twice")["metadata"]["uid"]  # type: ignore[index]
    base = f"s3://{s3_server.bucket}/ci/{namespace}/twice/{uid}"
    # one object per container per attempt, build first
    earlier = status["attempts"][0]["logs"]
    assert [e["container"] for e in earlier] == ["build", "db"]
    assert [e["container"] for e in status["logs"]] == ["build", "db"]
    assert status["logs"][0] == {
        "container": "build", "url": f"{base}/2/build.log", "bytes": 10, "truncated": False,
    }  # fmt: skip
    assert s3_object(s3_server, status["logs"][0]["url"]) == b"all green\n"
    # what `kubectl logs` returns of each container (the pods are still there)
    core = client.CoreV1Api(api)
    for entry in status["logs"]:
        served = core.read_namespaced_pod_log("twice-2", namespace, container=entry["container"])
        assert s3_object(s3_server, entry["url"]).decode() == served
    # capped at maxBytes, cut after a whole line, with the marker
    build = earlier[0]
    assert build["url"] == f"{base}/1/build.log" and build["truncated"] is True
    stored = s3_object(s3_server, build["url"])
    assert len(stored) == build["bytes"] <= MAX_BYTES
    assert stored.startswith(b"line 0 of the first attempt\n")
    head, marker = stored.rsplit(b"\n[cijob: log truncated", 1)
    assert first.encode().startswith(head + b"\n") and b"logArchive.maxBytes" in marker
    # credentials: nowhere in the operator's log, the job's status or its events
    text = op.log() + str(cijobs.get(namespace, "twice")) + str(cijobs.events(namespace, "twice"))
    assert s3_server.secret_key not in text and s3_server.access_key not in text

    # the pods are gone: `cijob logs` reads the archive with the user's own S3 environment
    for pod in ("twice-1", "twice-2"):
        core.delete_namespaced_pod(pod, namespace, grace_period_seconds=0)
    wait_for("the pods to be gone", lambda: not cijobs.pods(namespace, "twice"))
    proc = cijob(kubeconfig, "logs", "twice", "-n", namespace, env=s3_server.env())
    assert (proc.returncode, proc.stdout) == (0, "all green\n"), proc.stderr
    proc = cijob(kubeconfig, "logs", "twice", "-n", namespace, "--attempt", "1", "-c", "db",
                 env=s3_server.env())  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.startswith("kubesim: db of"), proc.stderr
    proc = cijob(kubeconfig, "logs", "twice", "-n", namespace, "-c", "nope", env=s3_server.env())
    assert proc.returncode == 1 and "holds no log of container nope" in proc.stderr
    proc = cijob(kubeconfig, "logs", "twice", "-n", namespace)  # no credentials of one's own
    assert proc.returncode == 1 and "your own S3 credentials" in proc.stderr, proc.stderr


def test_kubesim_archive_directory_and_cli_logs(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    cijobs: CiJobs,
    api: client.ApiClient,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    root = tmp_path / "logs"
    start_operator({"logArchive": {"url": f"file://{root}"}})
    kubesim.plan_job(namespace, "dir", Behaviour.exits(3).but(log="boom\n"))
    cijobs.create(namespace, "dir", {**SPEC, "retry": None, "services": []})
    status = archived(cijobs, namespace, "dir")
    assert status["phase"] == "Failed"
    uid = cijobs.get(namespace, "dir")["metadata"]["uid"]  # type: ignore[index]
    path = root / namespace / "dir" / uid / "1" / "build.log"
    assert status["logs"] == [
        {"container": "build", "url": f"file://{path}", "bytes": 5, "truncated": False}
    ]
    assert path.read_bytes() == b"boom\n"
    client.CoreV1Api(api).delete_namespaced_pod("dir-1", namespace, grace_period_seconds=0)
    wait_for("pod dir-1 to be gone", lambda: cijobs.pod(namespace, "dir-1") is None)
    proc = cijob(kubeconfig, "logs", "dir", "-n", namespace)
    assert (proc.returncode, proc.stdout) == (0, "boom\n"), proc.stderr
    path.unlink()  # as on a machine that does not see the operator's volume
    proc = cijob(kubeconfig, "logs", "dir", "-n", namespace)
    assert proc.returncode == 1 and "which this machine cannot read" in proc.stderr


class _Relay:
    """A TCP relay to the S3 server on a port of its own, that can be closed: a store that
    is down, then back."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.server: socket.socket | None = None

    def up(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        if self.server is not None:
            self.server.close()


def test_kubesim_archive_store_down_is_retried_and_counted_in_an_event_status_first(
    start_operator: OperatorFactory,
    kubesim: KubeSim,
    namespace: str,
    cijobs: CiJobs,
    api: client.ApiClient,
    s3_server: seaweedfs.S3Server,
) -> None:
    relay = _Relay(s3_server.endpoint)  # nothing listens there yet: the store is down
    credentials_secret(api, namespace, s3_server)
    op = start_operator(
        s3_settings(s3_server, f"http://127.0.0.1:{relay.port}"),
        env={"POD_NAMESPACE": namespace},
    )
    kubesim.plan_job(namespace, "later", Behaviour.succeeds().but(log="kept\n"))
    cijobs.create(namespace, "later", {**SPEC, "services": []})
    # the job's outcome is written at once, the store being down or not
    status = cijobs.wait_phase(namespace, "later")["status"]
    assert status["phase"] == "Succeeded" and status.get("logs") is None
    wait_for("a failed try", lambda: "archiving the log of later-1/build failed" in op.log())
    relay.up()
    try:
        status = archived(cijobs, namespace, "later")
    finally:
        relay.down()
    assert s3_object(s3_server, status["logs"][0]["url"]) == b"kept\n"
    events = cijobs.wait_event(namespace, "later", "LogArchiveRetried")
    retried = [e for e in events if e["reason"] == "LogArchiveRetried"]
    assert retried and "logs archived after" in retried[0]["message"], events
    assert s3_server.secret_key not in str(events)
