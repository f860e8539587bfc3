"""GitLab's `retry:`: which failed attempts get another one."""

from __future__ import annotations

from typing import get_args

from cijob.api.spec import RetryReason, RetrySpec

# Failures of the run, not of the job's definition: another attempt may pass. They are the
# reasons `retry.when` may name.
RETRYABLE = frozenset(get_args(RetryReason))


def should_retry(reason: str | None, attempt: int, retry: RetrySpec | None) -> bool:
    """True when attempt `attempt` (from 1), which failed with `reason`, gets a successor."""
    if retry is None or reason not in RETRYABLE or attempt > retry.max:
        return False
    return retry.when is None or reason in retry.when
