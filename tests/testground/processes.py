"""Starting, checking and stopping the control plane's daemons by pid, and reading their logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import deque
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(argv: list[str], log: Path) -> int:
    """Starts a daemon in its own session (so it outlives `testground up`); returns its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    # Popen returns while exec is still replacing the image, when /proc/<pid>/cmdline reads
    # empty for a moment; alive() needs it, so wait for it.
    deadline = time.monotonic() + 2
    while not _cmdline(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return proc.pid


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def alive(pid: int, name: str, marker: str) -> bool:
    """Whether `pid` is still our daemon: pids get reused, and another checkout runs the same
    binaries, so its command line must name the program and our own state directory."""
    argv = _cmdline(pid)
    if not argv or _is_zombie(pid):
        return False
    return Path(argv[0]).name == name and any(marker in a for a in argv[1:])


def reap() -> None:
    """Collects exited children, so a daemon this process started does not linger as a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def stop(pid: int, name: str, marker: str, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; only if the pid is still the daemon we started."""
    if not alive(pid, name, marker):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap()
        if not alive(pid, name, marker):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and alive(pid, name, marker):
        reap()
        time.sleep(0.05)


def wait_exit(pid: int, timeout: float) -> None:
    """Waits for a child of this process to exit (and reaps it), so its log is complete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # not our child, or reaped already
        if done:
            return
        time.sleep(0.02)


def tail(log: Path, lines: int = 40) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        with log.open("r", errors="replace") as f:
            return "".join(deque(f, maxlen=lines)).rstrip()
    except OSError:
        return f"(no log at {log})"
