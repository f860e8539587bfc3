"""The clone container's status: the commit it checked out, or SourceFetchFailed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cijob.lifecycle import status as st
from cijob.lifecycle.observe import observe_pod
from cijob.source.observe import checked_out, fetch_failure, redact
from cijob.source.secret import secret_problem

SHA = "0123456789abcdef0123456789abcdef01234567"
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def pod(clone: dict[str, Any], phase: str, build: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "j-1", "creationTimestamp": "2025-03-01T11:59:59Z"},
        "spec": {
            "initContainers": [{"name": "clone", "image": "helper"}],
            "containers": [{"name": "build", "image": "ruby"}],
        },
        "status": {
            "phase": phase,
            "startTime": "2025-03-01T12:00:00Z",
            "initContainerStatuses": [{"name": "clone", "state": clone}],
            "containerStatuses": [{"name": "build", "state": build or {"waiting": {}}}],
        },
    }


def done(code: int, message: str = "") -> dict[str, Any]:
    return {
        "terminated": {"exitCode": code, "message": message, "finishedAt": "2025-03-01T12:00:05Z"}
    }


def test_the_commit_comes_from_the_termination_message() -> None:
    p = pod(done(0, f"commit={SHA}\nbranch=main\n"), "Running", {"running": {}})
    assert checked_out(p) == SHA
    obs = observe_pod(p, T0, 60)
    assert obs.phase == "Running" and obs.commit == SHA


def test_no_commit_while_pending_so_it_rides_on_the_running_write() -> None:
    p = pod(done(0, f"commit={SHA}\n"), "Pending")
    assert observe_pod(p, T0, 60).commit is None


def test_a_failed_clone_is_source_fetch_failed_with_gits_words() -> None:
    message = "cannot fetch branch nope: fatal: couldn't find remote ref refs/heads/nope"
    p = pod(done(1, message), "Failed")
    obs = observe_pod(p, T0, 60)
    assert (obs.phase, obs.reason, obs.message) == ("Failed", "SourceFetchFailed", message)
    assert obs.completion_time == "2025-03-01T12:00:05Z"
    assert checked_out(p) is None


def test_a_clone_killed_without_a_message_still_says_why() -> None:
    term = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    assert fetch_failure(pod(term, "Failed")) == (
        "the clone container exited with code 137 (OOMKilled)",
        None,
    )


def test_a_running_clone_is_no_failure() -> None:
    assert fetch_failure(pod({"running": {}}, "Pending")) is None


def test_url_passwords_are_masked() -> None:
    assert redact("fatal: https://u:s3cret@h/x") == "fatal: https://[MASKED]@h/x"


def test_status_records_the_commit_and_its_short_form() -> None:
    obs = observe_pod(pod(done(0, f"commit={SHA}"), "Running", {"running": {}}), T0, 60)
    new = st.from_observation({"phase": "Pending", "attempt": 1}, obs, 1, T0)
    assert new["commit"] == SHA and new["shortCommit"] == SHA[:8]
    assert st.changed({"phase": "Running"}, new)


def test_secret_problems_name_keys_never_values() -> None:
    assert secret_problem("c", None) == "spec.source.git.secretRef: Secret c does not exist"
    assert secret_problem("c", {"password": "p"}) is None
    assert secret_problem("c", {"username": "u", "token": "t"}) is None
    missing = secret_problem("c", {"username": "hunter2-user"})
    assert missing is not None and "password or token" in missing and "hunter2" not in missing
    ssh = secret_problem("c", {"ssh-privatekey": "KEY"})
    assert ssh is not None and "known_hosts" in ssh and "KEY" not in ssh
    assert secret_problem("c", {"ssh-privatekey": "KEY", "known_hosts": "h ssh-ed25519 A"}) is None
