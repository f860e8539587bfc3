"""GitLab's `retry:`: which failed attempts get another one."""

from __future__ import annotations

from typing import get_args

from cijob.api.spec import RetryReason, RetrySpec

# Failures of the run, not of the job's definition: another attempt may pass. They are the
# reasons `retry.when` may name.
RETRYABLE = frozenset(get_args(RetryReason))


def should_retry(
    reason: str | None, attempt: int, retry: RetrySpec | None, exit_code: int | None = None
) -> bool:
    """True when attempt `attempt` (from 1), which failed with `reason` and the script's
    `exit_code`, gets a successor. As GitLab's retry: the reason must be one of `when` (any
    when omitted) and, with `exitCodes`, the exit code one of those: a failure without one
    (an image pull) is then not retried."""
    if retry is None or reason not in RETRYABLE or attempt > retry.max:
        return False
    if retry.when is not None and reason not in retry.when:
        return False
    return retry.exitCodes is None or exit_code in retry.exitCodes
