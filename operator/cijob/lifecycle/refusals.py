"""Why the API server refused to create a job's pod or Secret, and whether waiting can help."""

from __future__ import annotations

from dataclasses import dataclass

# The API server's own words for refusals that the cluster may lift by itself.
_QUOTA = "exceeded quota"
_SERVICE_ACCOUNT = "error looking up service account"
_RBAC = "cannot create resource"
TRANSIENT_CODES = frozenset({0, 408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Refusal:
    """A refused create: `transient` ones keep the job Pending and are tried again."""

    reason: str
    message: str
    transient: bool


def classify(status: int, message: str) -> Refusal:
    """The refusal an HTTP status and the API server's message amount to (docs/lifecycle.md)."""
    if status in TRANSIENT_CODES:
        return Refusal("APIUnavailable", message or f"HTTP {status}", True)
    if status == 403 and _QUOTA in message:
        return Refusal("QuotaExceeded", message, True)
    if status == 403 and _SERVICE_ACCOUNT in message:
        return Refusal("ServiceAccountMissing", message, True)
    if status == 403 and _RBAC in message:
        # The operator's own permissions: the platform can grant them without a new job.
        return Refusal("OperatorForbidden", message, True)
    if status == 404:
        return Refusal("NamespaceNotFound", message, True)
    if status == 403:
        return Refusal("AdmissionDenied", message, False)
    return Refusal("PodInvalid", message, False)
