"""Following a CiJob: progress, each attempt's build log, the closing line and exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from cijob import api
from cijob.cli import status as st
from cijob.cli.kubeopts import Kube
from cijob.durations import parse_duration
from cijob.render import names
from cijob.render.pod import BUILD_CONTAINER

# How often the job and its pod are read while waiting (a poll, not a watch: one CLI, one job).
POLL_SECONDS = 0.5
INTERRUPTED = 130
# How long, once the job has ended, a log stream may take to deliver its last lines.
LOG_TAIL_SECONDS = 30.0
Json = dict[str, Any]


class Fail(Exception):
    """A failure of the command itself (not of the job): message, exit code 1."""


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(parse_duration(text))
    except ValueError as exc:
        raise Fail(f"--timeout: {exc}") from None


class Out:
    """Where progress goes: stderr, and only on a terminal; colour only there too."""

    def __init__(self, json_output: bool) -> None:
        self.tty = sys.stderr.isatty()
        self.colour = self.tty and not os.environ.get("NO_COLOR")
        self.json = json_output
        self._last = ""

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def progress(self, line: str | None) -> None:
        if self.tty and line and line != self._last:
            self._last = line
            print(self._paint(f"… {line}", "2"), file=sys.stderr, flush=True)

    def note(self, line: str) -> None:
        print(f"cijob: {line}", file=sys.stderr, flush=True)

    def header(self, line: str) -> None:
        print(self._paint(f"── {line} ──", "1"), file=sys.stderr, flush=True)

    def closing(self, job: Json) -> None:
        s = job.get("status") or {}
        line = st.closing_line(job)
        code = "32" if s.get("phase") == "Succeeded" else "31"
        print(self._paint(line, code), file=sys.stderr, flush=True)
        if self.json:
            print(json.dumps(st.summary(job)), flush=True)


def api_message(exc: ApiException) -> str:
    """The API server's own message (the Status body), else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(exc.reason or exc.status)


def get_job(kube: Kube, name: str) -> Json | None:
    try:
        job: Json = kube.custom.get_namespaced_custom_object(
            api.GROUP, api.VERSION, kube.namespace, api.PLURAL, name
        )
        return job
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def get_pod(kube: Kube, name: str) -> Json | None:
    try:
        pod: Json = kube.api.sanitize_for_serialization(
            kube.core.read_namespaced_pod(name, kube.namespace)
        )
        return pod
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def pod_events(kube: Kube, pod: str) -> list[Json]:
    found = kube.core.list_namespaced_event(
        kube.namespace, field_selector=f"involvedObject.name={pod}"
    )
    events: list[Json] = kube.api.sanitize_for_serialization(found).get("items") or []
    return events


def stream_log(kube: Kube, pod: str, container: str, follow: bool, out: Out) -> bool:
    """Copies the container's log to stdout (live with `follow`); False, with a note, if the
    kubelet cannot serve it."""
    try:
        resp = kube.core.read_namespaced_pod_log(
            pod, kube.namespace, container=container, follow=follow, _preload_content=False
        )
        target = sys.stderr.buffer if out.json else sys.stdout.buffer
        for chunk in resp.stream(1024):
            target.write(chunk)
            target.flush()
        resp.release_conn()
        return True
    except ApiException as exc:
        out.note(f"the log of {pod}/{container} is not available: {api_message(exc)}")
        return False


class Follower:
    """Waits for a job to end, printing progress and (with `logs`) each attempt's build log."""

    def __init__(self, kube: Kube, name: str, out: Out, logs: bool) -> None:
        self.kube, self.name, self.out, self.logs = kube, name, out, logs
        self.streams: dict[int, threading.Thread] = {}
        self.headed: set[int] = set()
        self.events: set[str] = set()

    def _stream(self, attempt: int, follow: bool) -> None:
        # An earlier attempt's log ends first: its container ended before this pod was made.
        for earlier in self.streams.values():
            earlier.join(timeout=LOG_TAIL_SECONDS)
        pod = names.pod_name(self.name, attempt)
        if attempt not in self.headed:
            self.headed.add(attempt)
            self.out.header(f"attempt {attempt}: pod {pod}")
        t = threading.Thread(
            target=stream_log,
            args=(self.kube, pod, BUILD_CONTAINER, follow, self.out),
            daemon=True,
        )
        self.streams[attempt] = t
        t.start()

    def step(self) -> Json:
        """One look at the job (and its pod); returns the job."""
        job = get_job(self.kube, self.name)
        if job is None:
            raise Fail(f"CiJob {self.kube.namespace}/{self.name} not found (deleted?)")
        status = job.get("status") or {}
        attempt = status.get("attempt") or 0
        pod = get_pod(self.kube, status["podName"]) if status.get("podName") else None
        self.out.progress(st.progress(job, pod))
        if self.out.tty and pod is not None:
            # Events name the image being pulled and the service being started; read only
            # for a terminal, where progress is shown.
            for line in st.event_lines(pod_events(self.kube, status["podName"]), self.events):
                self.out.progress(line)
        if self.logs and attempt and attempt not in self.streams and st.build_started(pod):
            self._stream(attempt, follow=not st.is_terminal(status))
        return job

    def finish(self, job: Json) -> None:
        """After the end: the logs of attempts never streamed, and the streams' last lines."""
        if not self.logs:
            return
        last = (job.get("status") or {}).get("attempt") or 0
        for attempt in range(1, last + 1):
            if attempt not in self.streams and get_pod(
                self.kube, names.pod_name(self.name, attempt)
            ):
                self._stream(attempt, follow=False)
            if attempt in self.streams:
                self.streams[attempt].join(timeout=LOG_TAIL_SECONDS)

    def run(self, timeout: float | None) -> Json:
        deadline = time.monotonic() + timeout if timeout is not None else None
        while True:
            job = self.step()
            if st.is_terminal(job.get("status") or {}):
                self.finish(job)
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError
            time.sleep(POLL_SECONDS)


def _cancel(kube: Kube, name: str) -> None:
    kube.custom.patch_namespaced_custom_object(
        api.GROUP, api.VERSION, kube.namespace, api.PLURAL, name, {"spec": {"cancel": True}}
    )


def _ask_cancel(name: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"\ncancel CiJob {name}? [y/N] ")
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")


def follow_to_end(kube: Kube, name: str, args: argparse.Namespace, logs: bool) -> int:
    """Follows the job to its end; the exit code the command returns."""
    out = Out(args.output == "json")
    follower = Follower(kube, name, out, logs)
    timeout = _duration(args.timeout)
    cancelled = False
    while True:
        try:
            job = follower.run(timeout)
            break
        except TimeoutError:
            out.note(f"CiJob {name} did not end within {args.timeout}; it is left running")
            return 1
        except KeyboardInterrupt:
            if cancelled:
                out.note(f"stopped following CiJob {name}")
                return INTERRUPTED
            if getattr(args, "cancel_on_interrupt", False) or _ask_cancel(name):
                _cancel(kube, name)
                cancelled = True
                out.note(f"canceling CiJob {name} (Ctrl-C again to stop waiting)")
                continue
            out.note(f"CiJob {name} is left running: cijob wait {name} -n {kube.namespace}")
            return INTERRUPTED
    out.closing(job)
    return st.exit_code(job.get("status") or {})
