"""An operator replica as its Deployment keeps it, started, killed, frozen and thawed."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from chaos.ground import LEASE, NAMESPACE, OPERATOR_SETTINGS, Echo
from integration.support import Operator
from testground import cluster


class Replica:
    """One operator replica as a Deployment keeps one: a new process (and client certificate,
    so a new user in the audit log) each time it starts."""

    def __init__(self, letter: str, root: Path, workdir: Path, echo: Echo) -> None:
        self.letter, self.root, self.workdir, self.echo = letter, root, workdir, echo
        self.op: Operator | None = None
        self.users: list[str] = []
        self.frozen = False
        self.down = False  # killed on purpose, restart pending
        self.exits: list[int] = []  # exit codes of processes that ended by themselves

    def start(self) -> None:
        user = f"chaos-op-{self.letter}{len(self.users) + 1}"
        kubeconfig = cluster.client_kubeconfig(user, "system:masters", self.root)
        election = ["--leader-elect", "--lease-namespace", NAMESPACE, "--lease-name", LEASE]
        op = Operator(
            str(kubeconfig), [NAMESPACE], self.workdir / user, settings=OPERATOR_SETTINGS,
            log_level="info", extra_args=election,
        )  # fmt: skip
        self.op = op.start()
        self.users.append(user)
        self.down = False
        self.echo(f"replica {user} started (pid {self.pid})")

    @property
    def pid(self) -> int | None:
        return self.op.proc.pid if self.op and self.op.proc else None

    @property
    def user(self) -> str:
        return self.users[-1]

    def exited(self) -> int | None:
        proc = self.op.proc if self.op else None
        return None if proc is None else proc.poll()

    def kill(self) -> None:
        self.thaw()
        if self.op is not None:
            self.op.kill()
        self.down = True
        self.echo(f"replica {self.user}: SIGKILL")

    def freeze(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGSTOP)
            self.frozen = True
            self.echo(f"replica {self.user}: SIGSTOP")

    def thaw(self) -> None:
        if self.frozen and self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
            self.frozen = False
            self.echo(f"replica {self.user}: SIGCONT")

    def stop(self) -> None:
        self.thaw()
        if self.op is not None:
            self.op.stop()
