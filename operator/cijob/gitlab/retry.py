"""GitLab's `retry:` onto the CiJob's: `max`, and `when` failure types onto CiJob reasons."""

from __future__ import annotations

from cijob.api.spec import RetrySpec

# GitLab's failure types (retry:when) -> the CiJob reasons that are the same failure here.
# `always` (and no `when`) is every retryable reason: `when` is left out.
WHEN_TO_REASONS: dict[str, tuple[str, ...]] = {
    "script_failure": ("ScriptFailure", "OOMKilled"),
    "stuck_or_timeout_failure": ("Timeout",),
    "job_execution_timeout": ("Timeout",),
    "server_timeout_running": ("Timeout",),
    "runner_system_failure": ("PodEvicted", "PodDeleted", "ImagePullFailed", "ServiceNotReady"),
    "unknown_failure": ("PodDeleted",),
}
# Failure types of GitLab's own machinery that nothing here produces: warned about, not mapped.
NO_EQUIVALENT = frozenset(
    {
        "api_failure",
        "runner_unsupported",
        "stale_schedule",
        "archived_failure",
        "unmet_prerequisites",
        "scheduler_failure",
        "data_integrity_failure",
        "missing_dependency_failure",
        "stuck_pending_with_matching_runners",
        "stuck_pending_no_matching_runners",
        "no_updates_running",
        "no_updates_canceling",
        "server_timeout_canceling",
    }
)
ALWAYS = "always"


def map_when(values: list[str]) -> tuple[list[str] | None, list[str], list[str]]:
    """(CiJob reasons or None for all, failure types with no equivalent, unknown values)."""
    if ALWAYS in values:
        return (
            None,
            [],
            [
                v
                for v in values
                if v not in WHEN_TO_REASONS and v != ALWAYS and v not in NO_EQUIVALENT
            ],
        )
    reasons: list[str] = []
    for v in values:
        for r in WHEN_TO_REASONS.get(v, ()):
            if r not in reasons:
                reasons.append(r)
    return (
        reasons,
        [v for v in values if v in NO_EQUIVALENT],
        [v for v in values if v not in WHEN_TO_REASONS and v not in NO_EQUIVALENT],
    )


def has_exit_codes() -> bool:
    """Whether the CRD carries `retry.exitCodes` (GitLab's `retry:exit_codes`)."""
    return "exitCodes" in RetrySpec.model_fields
