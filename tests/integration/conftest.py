"""Fixtures for operator tests: a real operator process per test, and CiJob helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.support import CiJobs, Operator
from testground import seaweedfs

OperatorFactory = Callable[..., Operator]


@pytest.fixture
def cijobs(kubeconfig: Path, crds: list[str]) -> CiJobs:
    return CiJobs(str(kubeconfig))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweedfs.S3Server]:
    """SeaweedFS's S3 gateway on loopback, with an identity and a bucket of its own (the log
    archive's store); a server that cannot start fails the test."""
    try:
        server = seaweedfs.start(tmp_path_factory.mktemp("seaweedfs"))
    except seaweedfs.S3Error as e:
        pytest.fail(f"the S3 server did not start: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_operator(
    kubeconfig: Path,
    namespace: str,
    crds: list[str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[OperatorFactory]:
    """Starts `cijob-operator` on the test's namespace; the log is printed when a test fails."""
    started: list[Operator] = []

    def start(
        settings: dict[str, Any] | None = None, env: dict[str, str] | None = None, **kw: Any
    ) -> Operator:
        op = Operator(
            str(kubeconfig),
            [namespace],
            tmp_path / f"operator-{len(started)}",
            settings=settings,
            env=env,
            **kw,
        )
        started.append(op)
        return op.start()

    yield start
    for op in started:
        op.stop()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for op in started:
            print(f"--- {op.log_path} (last 6000 chars) ---\n{op.log()[-6000:]}")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, "rep_" + rep.when, rep)
