"""The Secret of `spec.source.git.secretRef`: checked before the pod is made (InvalidSpec)."""

from __future__ import annotations

from collections.abc import Mapping

from cijob.errors import InvalidSpec
from cijob.job import Job
from cijob.kube import Kube

BASIC_KEYS = ("password", "token")
SSH_KEY = "ssh-privatekey"
KNOWN_HOSTS = "known_hosts"


def secret_problem(name: str, data: Mapping[str, str] | None) -> str | None:
    """What is wrong with the Secret's data for git (None: usable). Names keys, never values."""
    field = "spec.source.git.secretRef"
    if data is None:
        return f"{field}: Secret {name} does not exist"
    if SSH_KEY in data:
        if not data.get(KNOWN_HOSTS, "").strip():
            return (
                f"{field}: Secret {name} has {SSH_KEY} but no {KNOWN_HOSTS}: the host's keys "
                "must be known (kubernetes.io/ssh-auth with both keys)"
            )
        return None
    if not any(data.get(k, "") for k in BASIC_KEYS):
        return (
            f"{field}: Secret {name} has none of the keys password or token "
            f"(kubernetes.io/basic-auth) or {SSH_KEY} (kubernetes.io/ssh-auth)"
        )
    return None


async def check_source_secret(kube: Kube, job: Job) -> None:
    """Raises InvalidSpec when the job's git Secret or its keys are missing."""
    source = job.spec.source
    ref = source.git.secretRef if source is not None else None
    if ref is None:
        return
    problem = secret_problem(ref.name, await kube.secret_data(job.namespace, ref.name))
    if problem is not None:
        raise InvalidSpec(problem)
