"""GitLab's `retry:`: which failed attempts get another one."""

from __future__ import annotations

from cijob.api.spec import RetrySpec

# Failures of the run, not of the job's definition: another attempt may pass.
RETRYABLE = frozenset(
    {
        "ScriptFailure",
        "ImagePullFailed",
        "Timeout",
        "PodEvicted",
        "PodDeleted",
        "OOMKilled",
        "SourceFetchFailed",
    }
)


def should_retry(reason: str | None, attempt: int, retry: RetrySpec | None) -> bool:
    """True when attempt `attempt` (from 1), which failed with `reason`, gets a successor."""
    if retry is None or reason not in RETRYABLE or attempt > retry.max:
        return False
    return retry.when is None or reason in retry.when
