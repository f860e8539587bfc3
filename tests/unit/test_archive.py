"""The log archive's pure parts and its archiver, with a fake API and a real directory store:
the cap and its marker, the object layout, where logs sit in the status, the retries."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cijob.api.status import CiJobStatus
from cijob.archive import archiver as archiver_module
from cijob.archive import layout, placement
from cijob.archive.archiver import Archiver, delay, ran
from cijob.archive.redact import Redactor
from cijob.archive.settings import DEFAULT_MAX_BYTES, LogArchive
from cijob.archive.store import CredentialsError, credentials, s3_options
from cijob.config import OperatorConfig
from cijob.kube import KubeError


def test_cap_keeps_a_log_that_fits_whole() -> None:
    assert layout.cap(b"a\nb\n", 4) == (b"a\nb\n", False)


def test_cap_cuts_after_the_last_whole_line_with_a_marker_and_stays_within_max() -> None:
    data = b"".join(b"line %d\n" % i for i in range(1000))
    stored, truncated = layout.cap(data, 2048)
    assert truncated and len(stored) <= 2048
    head, marker = stored.split(b"[cijob: log truncated", 1)
    assert data.startswith(head) and head.endswith(b"\n")
    assert b"first 2048 bytes" in marker and stored.endswith(b"]\n")


def test_cap_of_one_enormous_line_cuts_it_mid_line() -> None:
    stored, truncated = layout.cap(b"x" * 5000, 1024)
    assert truncated and len(stored) <= 1024 and stored.startswith(b"xxx")
    assert b"\n[cijob: log truncated" in stored


def test_object_layout_namespace_first_uid_and_attempt() -> None:
    key = layout.object_key("team-a", "rspec", "u-1", 2, "build")
    assert key == "team-a/rspec/u-1/2/build.log"
    assert layout.object_url("s3://b/ci/", key) == "s3://b/ci/team-a/rspec/u-1/2/build.log"


def test_settings_as_the_issue_fixes_them() -> None:
    config = OperatorConfig.model_validate(
        {
            "logArchive": {
                "url": "s3://bucket/prefix",
                "s3": {"endpoint": "https://s3.example.com", "region": "us-east-1",
                       "credentialsSecret": "name", "pathStyle": False},
            }
        }
    )  # fmt: skip
    assert config.logArchive is not None and config.logArchive.maxBytes == 16777216
    assert DEFAULT_MAX_BYTES == 16 * 1024 * 1024
    assert OperatorConfig().logArchive is None
    for bad in ("http://x", "file://relative/x", "s3:///nobucket", "s3://b?x=1"):
        with pytest.raises(ValidationError):
            LogArchive(url=bad)


def test_s3_options_path_and_virtual_hosted_style() -> None:
    creds = {"access_key_id": "AK", "secret_access_key": "SK"}
    path = LogArchive.model_validate(
        {"url": "s3://logs/ci", "s3": {"endpoint": "http://127.0.0.1:9", "pathStyle": True}}
    )
    opts = s3_options(path, creds)
    assert (opts["bucket"], opts["prefix"]) == ("logs", "ci")
    assert opts["config"]["endpoint"] == "http://127.0.0.1:9"
    assert opts["config"]["virtual_hosted_style_request"] is False
    assert opts["client_options"]["allow_http"] is True
    hosted = LogArchive.model_validate(
        {"url": "s3://logs", "s3": {"endpoint": "https://s3.example.com", "region": "eu-west-1"}}
    )
    opts = s3_options(hosted, creds)
    assert opts["config"]["endpoint"] == "https://logs.s3.example.com"
    assert opts["prefix"] is None and opts["config"]["region"] == "eu-west-1"
    assert opts["client_options"]["allow_http"] is False


def test_credentials_from_the_secret_and_errors_name_no_value() -> None:
    data = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value"}
    assert credentials(data, "s") == {
        "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": "s3cr3t-value",
    }
    with pytest.raises(CredentialsError, match=r"Secret s .* not found"):
        credentials(None, "s")
    with pytest.raises(CredentialsError) as err:
        credentials({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}, "s")
    assert "AWS_SECRET_ACCESS_KEY" in str(err.value) and "AKIAEXAMPLE" not in str(err.value)


def test_redactor_hides_secret_values() -> None:
    r = Redactor()
    r.hide(["AKIAEXAMPLE", "s3cr3t-value", "ab"])
    assert r("denied for AKIAEXAMPLE/s3cr3t-value ab") == "denied for ***/*** ab"


def test_status_models_have_the_logs_fields() -> None:
    entry = {"container": "build", "url": "s3://b/k", "bytes": 3, "truncated": False}
    status = CiJobStatus.model_validate(
        {"attempt": 2, "logs": [entry], "attempts": [{"attempt": 1, "logs": []}]}
    )
    assert status.logs is not None and status.logs[0].truncated is False
    assert status.attempts is not None and status.attempts[0].logs == []
    assert layout.entry("build", "s3://b/k", 3, False) == entry


LOGS = [{"container": "build", "url": "u", "bytes": 1, "truncated": False}]


def test_placement_current_attempt_in_logs_earlier_in_their_records() -> None:
    old = {"attempt": 1, "phase": "Running", "logs": None}
    new = {"attempt": 2, "phase": "Pending", "attempts": [{"attempt": 1, "reason": "X"}]}
    placed = placement.place(old, new, {1: LOGS})
    assert placed["attempts"][0]["logs"] == LOGS and placed["logs"] is None
    # a later write built without them keeps them, and the current attempt's go to `logs`
    later = placement.place(placed, {**new, "phase": "Succeeded"}, {2: []})
    assert later["attempts"][0]["logs"] == LOGS and later["logs"] == []
    assert placement.recorded(later) == {1: LOGS, 2: []}


def test_ended_attempts_and_missing() -> None:
    running = {"attempt": 2, "phase": "Running", "attempts": [{"attempt": 1}]}
    assert placement.ended_attempts(running) == [1]
    retrying = {"attempt": 2, "phase": "Pending", "attempts": [{"attempt": 1}, {"attempt": 2}]}
    assert placement.ended_attempts(retrying) == [1, 2]
    done = {"attempt": 1, "phase": "Canceled"}
    assert placement.missing(done) == [1] and placement.missing(done, [1]) == []
    assert placement.missing({**done, "logs": []}) == []


def _pod(*names: str, started: tuple[str, ...] = ("build", "db")) -> dict[str, Any]:
    return {
        "metadata": {"name": "j-1", "uid": "p"},
        "spec": {"initContainers": [{"name": "db"}], "containers": [{"name": "build"}]},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{"name": "build", "containerID": "c://1"}]
            if "build" in started
            else [{"name": "build"}],
            "initContainerStatuses": [{"name": "db", "containerID": "c://2"}]
            if "db" in started
            else [{"name": "db"}],
        },
    }


def test_ran_lists_started_containers_build_first() -> None:
    assert ran(_pod()) == ["build", "db"]
    assert ran(_pod(started=("build",))) == ["build"]


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [delay(n, 1.0, 8.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


class FakeKube:
    def __init__(self, logs: dict[str, bytes | int | None]) -> None:
        self.logs = logs
        self.reads: list[tuple[str, int]] = []

    async def pod_log(self, ns: str, pod: str, container: str, limit: int) -> bytes | None:
        self.reads.append((container, limit))
        value = self.logs[container]
        if isinstance(value, int):
            raise KubeError("read", value, "no")
        return value[:limit] if value is not None else None

    async def secret_data(self, ns: str, name: str) -> dict[str, str] | None:
        return None


def _archiver(tmp_path: Path, kube: FakeKube, **kw: Any) -> tuple[Archiver, list[Any], list[Any]]:
    events: list[Any] = []
    woken: list[Any] = []
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    settings = LogArchive(url=f"file://{tmp_path}", maxBytes=1024)
    a = Archiver(settings, kube, lambda *e: events.append(e), woken.append, "ops",  # type: ignore[arg-type]
                 sleep=sleep, **kw)  # fmt: skip
    a.sleeps = sleeps  # type: ignore[attr-defined]
    return a, events, woken


def test_archiver_one_read_per_container_cap_and_objects(tmp_path: Path) -> None:
    kube = FakeKube({"build": b"ok\n" * 1000, "db": b"ready\n"})
    a, events, _ = _archiver(tmp_path, kube)
    out = asyncio.run(a.archive(("ns", "j"), "u", 1, _pod()))
    assert kube.reads == [("build", 1025), ("db", 1025)]
    build, db = out.logs
    assert build["truncated"] is True and build["bytes"] <= 1024
    assert (tmp_path / "ns/j/u/1/build.log").read_bytes().startswith(b"ok\nok\n")
    assert db == layout.entry("db", f"file://{tmp_path}/ns/j/u/1/db.log", 6, False)
    assert out.failures == 0 and not events


def test_archiver_retries_a_store_that_is_down_then_reports_the_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = archiver_module.st.put
    fails = {"left": 3}

    async def flaky(store: Any, key: str, data: bytes) -> None:
        if fails["left"]:
            fails["left"] -= 1
            raise ConnectionError("store down")
        await real(store, key, data)

    monkeypatch.setattr(archiver_module.st, "put", flaky)
    kube = FakeKube({"build": b"x\n", "db": b"y\n"})
    a, events, woken = _archiver(tmp_path, kube, backoff_start=0.5)
    a.offer(("ns", "j"), "u", 1, _pod())
    assert a.pending("u", {"attempt": 1, "phase": "Succeeded"})

    async def one() -> None:
        task = asyncio.create_task(a.run())
        while not woken:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(one())
    assert kube.reads == [("build", 1025), ("db", 1025)]  # the log is read once, kept
    assert a.sleeps == [0.5, 1.0, 2.0]  # type: ignore[attr-defined]
    assert woken == [("ns", "j")] and [e["container"] for e in a.results["u"][1]] == ["build", "db"]
    ((_, type_, reason, message),) = events
    assert (type_, reason) == ("Warning", "LogArchiveRetried") and "after 3 failed tries" in message
    # once the status records them, nothing is held
    a.landed("u", placement.place({}, {"attempt": 1}, a.results["u"]))
    assert "u" not in a.results and not a.pending("u", {"attempt": 1, "logs": []})


def test_archiver_gives_up_after_its_tries_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(store: Any, key: str, data: bytes) -> None:
        raise ConnectionError("store down")

    monkeypatch.setattr(archiver_module.st, "put", down)
    given_up: list[int] = []
    kube = FakeKube({"build": b"x\n", "db": 400})
    a, events, _ = _archiver(tmp_path, kube, max_tries=3, given_up=given_up.append)
    out = asyncio.run(a.archive(("ns", "j"), "u", 1, _pod()))
    assert out.logs == [] and out.given_up == ("build",) and out.failures == 3
    a._report(archiver_module._Request(("ns", "j"), "u", 1, _pod()), out)
    assert events[0][2] == "LogArchiveFailed" and "could not be archived" in events[0][3]
    assert given_up == [1]  # counted in cijob_log_archive_failures


def test_archiver_a_pod_gone_keeps_what_was_read(tmp_path: Path) -> None:
    a, _, woken = _archiver(tmp_path, FakeKube({"build": b"x\n", "db": None}))
    out = asyncio.run(a.archive(("ns", "j"), "u", 1, _pod()))
    assert [e["container"] for e in out.logs] == ["build"]
    a.offer(("ns", "j"), "u", 2, None)  # gone before it could be read: nothing to keep
    assert a.results["u"][2] == [] and woken == [("ns", "j")]
