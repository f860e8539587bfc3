"""The test ground says why it cannot start: the missing binary, or the failing daemon's log."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testground import cluster


def test_up_names_the_missing_binaries(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    with pytest.raises(cluster.ClusterError) as e:
        cluster.up(tmp_path, echo=lambda _: None)
    message = str(e.value)
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm"):
        assert name in message
    assert "make testground" in message


def test_up_reports_a_failing_daemon_with_its_port_and_log(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in (*cluster.DAEMONS, *cluster.TOOLS):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\necho '{name}: cannot listen (simulated)' >&2\nexit 3\n")
        script.chmod(0o755)
    with pytest.raises(cluster.ClusterError) as e:
        cluster.up(tmp_path, echo=lambda _: None)
    message = str(e.value)
    assert message.startswith("etcd (127.0.0.1:")
    assert "exited during start-up" in message
    assert "etcd: cannot listen (simulated)" in message
    assert not (tmp_path / "state.json").exists()


def test_down_without_a_control_plane_is_a_no_op(tmp_path: Path) -> None:
    assert cluster.down(tmp_path, echo=lambda _: None) is False
    assert cluster.status(tmp_path) is None


def test_default_root_is_this_checkout_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIJOB_TESTGROUND_DIR", raising=False)
    assert cluster.default_root() == Path(__file__).resolve().parents[2] / ".cluster"
    monkeypatch.setenv("CIJOB_TESTGROUND_DIR", os.fspath(Path("/tmp/elsewhere")))
    assert cluster.default_root() == Path("/tmp/elsewhere")
