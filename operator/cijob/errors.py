"""Errors that end a job with a machine-readable reason."""

from __future__ import annotations


class JobError(Exception):
    """A problem with the job itself (not the cluster): the job ends Failed with `reason`.

    `message` is shown to users in the CiJob status and events, so it must never contain
    a credential; it names the field or the problem instead.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class InvalidSpec(JobError):
    """The CiJob spec is wrong in a way the API server could not check."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidSpec", message)


class InvalidAuthConfig(JobError):
    """DOCKER_AUTH_CONFIG cannot be understood."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidAuthConfig", message)


class CredentialHelperFailed(JobError):
    """A docker-credential-<name> helper is missing, failed or timed out."""

    def __init__(self, message: str) -> None:
        super().__init__("CredentialHelperFailed", message)


class PolicyViolation(JobError):
    """The job breaks an operator policy (pull policy, digest pinning)."""

    def __init__(self, message: str) -> None:
        super().__init__("PolicyViolation", message)
