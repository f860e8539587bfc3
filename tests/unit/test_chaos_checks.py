"""The chaos suite's judgements: lease tenures from the audit log, stray writes, overlaps."""

from __future__ import annotations

from typing import Any

from chaos import audit, checks, plan
from chaos.audit import Write
from testground.kubesim import PodRecord


def _lease(at: float, user: str, seconds: int = 15) -> Write:
    spec = {"holderIdentity": user, "leaseDurationSeconds": seconds}
    return Write(at, user, "ua", "update", "leases", "chaos", "l", {"spec": spec})


def _write(at: float, user: str) -> Write:
    return Write(at, user, "ua", "patch", "cijobs/status", "chaos", "c001", None)


def _evidence(**kw: Any) -> checks.Evidence:
    base: dict[str, Any] = dict(
        jobs=[], pods=[], records=[], creates=[], incarnations={}, statuses=[], decoys=[],
        strays=[], t0=0.0, wall_t0=0.0,
    )  # fmt: skip
    return checks.Evidence(**{**base, **kw})


def test_a_tenure_lasts_from_each_renewal_until_expiry_or_takeover() -> None:
    writes = [_lease(0, "a"), _lease(2, "a"), _lease(30, "b"), _lease(32, "b"), _lease(35, "a")]
    held = audit.tenures(writes, "chaos", "l")
    assert [(t.user, t.start, t.end) for t in held] == [
        ("a", 0, 17),
        ("b", 30, 35),
        ("a", 35, 50),
    ]


def test_writes_outside_the_writers_tenure_are_strays() -> None:
    held = audit.tenures([_lease(0, "a"), _lease(20, "b")], "chaos", "l")
    writes = [_write(5, "a"), _write(18, "a"), _write(21, "b"), _write(1, "b")]
    strays = audit.strays(writes, held, {"a", "b"})
    assert [(s.write.user, s.write.at, s.last_held) for s in strays] == [
        ("a", 18, 15),  # its lease had expired
        ("b", 1, None),  # a standby's
    ]


def _rec(uid: str, seen: float, ran: tuple[float, float] | None, ended: float | None) -> PodRecord:
    return PodRecord(
        uid, "chaos", uid, {"cijob.dev/attempt": uid[-1]}, "job", seen,
        ran[0] if ran else None, ran[1] if ran else None, ended,
    )  # fmt: skip


def test_attempts_one_after_the_other_do_not_overlap() -> None:
    ev = _evidence(records=[_rec("p1", 0, (1, 2), 2.5), _rec("p2", 3, (3.5, 4), 4)])
    ran, beside = checks.overlaps(ev)
    assert ran.violations == [] and beside.violations == []


def test_a_stuck_attempt_still_live_beside_the_next_one_is_found() -> None:
    stuck = _rec("p1", 0, None, 9)  # never ran (an image that does not pull), ended at 9
    ev = _evidence(records=[stuck, _rec("p2", 3, (3.5, 4), 4)])
    ran, beside = checks.overlaps(ev)
    assert ran.violations == [] and len(beside.violations) == 1


def test_two_attempts_running_at_once_are_found() -> None:
    ev = _evidence(records=[_rec("p1", 0, (1, 5), 5), _rec("p2", 3, (3.5, 4), 4)])
    ran, _ = checks.overlaps(ev)
    assert len(ran.violations) == 1


def test_a_result_rewritten_after_it_was_terminal_is_found() -> None:
    job = {"metadata": {"name": "c001", "uid": "u1"}, "status": {"phase": "Succeeded"}}
    statuses = [
        audit.StatusWrite(1, "u1", "c001", "Failed", "ScriptFailure", 1, "op"),
        audit.StatusWrite(2, "u1", "c001", "Succeeded", None, 2, "op"),
    ]
    check = checks.terminal_once(_evidence(jobs=[job], statuses=statuses))
    assert len(check.violations) == 1


def test_the_same_seed_gives_the_same_scenario() -> None:
    assert plan.make(plan.SMALL, 3) == plan.make(plan.SMALL, 3)
    assert plan.make(plan.SMALL, 3) != plan.make(plan.SMALL, 4)


def _job(phase: str, reason: str | None = None) -> dict[str, Any]:
    status = {"phase": phase, "reason": reason, "attempt": 1}
    return {"metadata": {"name": "c001", "uid": "job"}, "status": status}


def test_a_failed_job_whose_succeeded_pod_was_deleted_first_is_only_a_note() -> None:
    pod = _rec("p1", 0, (1, 2), 2)
    pod.phase, pod.gone = "Succeeded", 3.0
    ended = audit.StatusWrite(5, "job", "c001", "Failed", "PodDeleted", 1, "op")
    ev = _evidence(jobs=[_job("Failed", "PodDeleted")], records=[pod], statuses=[ended])
    check = checks.own_outcome(ev)
    assert check.violations == [] and len(check.notes) == 1


def test_a_green_job_whose_own_pod_failed_is_a_violation() -> None:
    pod = _rec("p1", 0, (1, 2), 2)
    pod.phase, pod.exit_code = "Failed", 1
    ev = _evidence(jobs=[_job("Succeeded")], records=[pod])
    assert len(checks.own_outcome(ev).violations) == 1


def test_a_green_job_without_a_pod_of_its_own_is_a_violation() -> None:
    foreign = _rec("p1", 0, (1, 2), 2)
    foreign.owner_uid, foreign.phase = "an-older-job", "Succeeded"
    ev = _evidence(jobs=[_job("Succeeded")], records=[foreign])
    assert checks.own_outcome(ev).violations == [
        "c001 (job) Succeeded/None: no pod of its own ever existed"
    ]
