"""How tests choose what the simulated node does with a pod."""

from __future__ import annotations

import pytest

from testground.plans import Behaviour, Plans

JOB = {"cijob.dev/job": "build", "cijob.dev/attempt": "2"}


def test_kubesim_plan_precedence_pod_then_attempt_then_job_then_default() -> None:
    plans = Plans(default=Behaviour.exits(9))
    assert plans.lookup("ns", "build-2", JOB).exit_code == 9
    plans.plan_job("ns", "build", Behaviour.exits(1))
    assert plans.lookup("ns", "build-2", JOB).exit_code == 1
    plans.plan_job("ns", "build", Behaviour.exits(2), attempt=2)
    assert plans.lookup("ns", "build-2", JOB).exit_code == 2
    assert plans.lookup("ns", "build-1", {**JOB, "cijob.dev/attempt": "1"}).exit_code == 1
    plans.plan("ns", "build-2", Behaviour.exits(3))
    assert plans.lookup("ns", "build-2", JOB).exit_code == 3


def test_kubesim_plans_are_per_namespace() -> None:
    plans = Plans()
    plans.plan_job("a", "build", Behaviour.exits(1))
    assert plans.lookup("b", "build-2", JOB) == Behaviour()
    plans.forget("a")
    assert plans.lookup("a", "build-2", JOB) == Behaviour()


def test_kubesim_behaviour_rejects_unknown_failures() -> None:
    with pytest.raises(ValueError, match="unknown failure"):
        Behaviour(failure="segfault")
    with pytest.raises(ValueError, match="run_seconds"):
        Behaviour(run_seconds=-1)


def test_kubesim_behaviour_constructors() -> None:
    assert Behaviour() == Behaviour.succeeds()
    assert Behaviour.held(exit_code=4) == Behaviour(exit_code=4, hold=True)
    assert Behaviour.oom_killed(run_seconds=1).failure == "oom"
    assert Behaviour.no_shell("bash").command == "bash"
    assert Behaviour.exits(3).but(run_seconds=2) == Behaviour(exit_code=3, run_seconds=2)
