"""GitLab's `retry:`: which failed attempts get another one."""

from __future__ import annotations

from typing import Any

import pytest

from cijob.api.spec import RetrySpec
from cijob.lifecycle.retry import RETRYABLE, should_retry

RETRYABLE_REASONS = [
    "ScriptFailure",
    "ImagePullFailed",
    "Timeout",
    "PodEvicted",
    "PodDeleted",
    "OOMKilled",
    "ServiceNotReady",
    "SourceFetchFailed",
]
NOT_RETRYABLE = [
    "NoShell",
    "InvalidSpec",
    "InvalidAuthConfig",
    "CredentialHelperFailed",
    "PolicyViolation",
    "Canceled",
]


def retry(**fields: Any) -> RetrySpec:
    return RetrySpec.model_validate(fields)


def test_the_retryable_set_is_section_6() -> None:
    assert set(RETRYABLE_REASONS) == RETRYABLE


def test_no_retry_spec_never_retries() -> None:
    for reason in RETRYABLE_REASONS:
        assert not should_retry(reason, 1, None)


def test_max_zero_never_retries() -> None:
    for reason in RETRYABLE_REASONS:
        assert not should_retry(reason, 1, retry(max=0))
    assert not should_retry("ScriptFailure", 1, retry())


@pytest.mark.parametrize("reason", RETRYABLE_REASONS)
def test_max_one_gives_one_more_attempt(reason: str) -> None:
    spec = retry(max=1)
    assert should_retry(reason, 1, spec)
    assert not should_retry(reason, 2, spec)


@pytest.mark.parametrize("reason", RETRYABLE_REASONS)
def test_max_two_gives_two_more_attempts(reason: str) -> None:
    spec = retry(max=2)
    assert should_retry(reason, 1, spec)
    assert should_retry(reason, 2, spec)
    assert not should_retry(reason, 3, spec)


@pytest.mark.parametrize("reason", NOT_RETRYABLE)
def test_failures_of_the_job_itself_are_never_retried(reason: str) -> None:
    assert not should_retry(reason, 1, retry(max=2))


def test_non_retryable_even_if_listed() -> None:
    # The API rejects these in `when`; a spec built around it still never retries them.
    spec = RetrySpec.model_construct(max=2, when=["NoShell", "InvalidSpec", "Canceled"])
    for reason in ["NoShell", "InvalidSpec", "Canceled"]:
        assert not should_retry(reason, 1, spec)


def test_no_reason_is_not_retried() -> None:
    assert not should_retry(None, 1, retry(max=2))


def test_unknown_reason_is_not_retried() -> None:
    assert not should_retry("SomethingElse", 1, retry(max=2))


def test_when_limits_the_reasons() -> None:
    spec = retry(max=2, when=["ScriptFailure", "PodEvicted", "ImagePullFailed"])
    assert should_retry("ScriptFailure", 1, spec)
    assert should_retry("PodEvicted", 2, spec)
    assert should_retry("ImagePullFailed", 1, spec)
    assert not should_retry("Timeout", 1, spec)
    assert not should_retry("OOMKilled", 1, spec)
    assert not should_retry("PodDeleted", 1, spec)
    assert not should_retry("ScriptFailure", 3, spec)


def test_empty_when_retries_nothing() -> None:
    spec = retry(max=2, when=[])
    for reason in RETRYABLE_REASONS:
        assert not should_retry(reason, 1, spec)


def test_when_omitted_means_every_retryable_reason() -> None:
    spec = retry(max=1)
    assert spec.when is None
    for reason in RETRYABLE_REASONS:
        assert should_retry(reason, 1, spec)


@pytest.mark.parametrize(
    ("spec", "reason", "code", "retried"),
    [
        # GitLab's documented example: exit_codes and no when retry only those codes
        ({"max": 2, "exitCodes": [137]}, "ScriptFailure", 1, False),
        ({"max": 1, "exitCodes": [255, 137]}, "ScriptFailure", 137, True),
        ({"max": 1, "exitCodes": [137]}, "OOMKilled", 137, True),
        # a failure without an exit code is not one of the codes
        ({"max": 1, "exitCodes": [137]}, "ImagePullFailed", None, False),
        ({"max": 1, "exitCodes": [1]}, "ServiceNotReady", None, False),
        # with when as well, both must hold
        ({"max": 1, "when": ["ScriptFailure"], "exitCodes": [3]}, "ScriptFailure", 3, True),
        ({"max": 1, "when": ["Timeout"], "exitCodes": [3]}, "ScriptFailure", 3, False),
        ({"max": 1, "when": ["ScriptFailure"], "exitCodes": [3]}, "ScriptFailure", 4, False),
        # no exitCodes: the code does not matter
        ({"max": 1}, "ScriptFailure", 42, True),
        ({"max": 1}, "ServiceNotReady", None, True),
    ],
)
def test_exit_codes_as_gitlab(
    spec: dict[str, Any], reason: str, code: int | None, retried: bool
) -> None:
    assert should_retry(reason, 1, retry(**spec), code) is retried
    assert not should_retry(reason, spec["max"] + 1, retry(**spec), code)


def test_exit_codes_are_bytes() -> None:
    with pytest.raises(ValueError):
        retry(max=1, exitCodes=[256])
