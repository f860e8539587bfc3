"""A GitLab job name as a CiJob name: a DNS-1123 subdomain of at most 60 characters."""

from __future__ import annotations

import hashlib
import re

# The CRD's rule: the name becomes a label value and, with the attempt, the pod's name.
MAX_NAME_LENGTH = 60
JOB_ANNOTATION = "cijob.dev/gitlab-job"
_VALID = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and bool(_VALID.match(name))


def object_name(job: str) -> str:
    """`job` itself when valid, else lowercased with other characters as `-` and a short hash
    of the original, so two jobs that differ only in spelling get different names."""
    if is_valid_name(job):
        return job
    base = re.sub(r"[^a-z0-9]+", "-", job.lower()).strip("-")
    digest = hashlib.sha256(job.encode("utf-8")).hexdigest()[:6]
    base = base[: MAX_NAME_LENGTH - len(digest) - 1].strip("-")
    return f"{base}-{digest}" if base else f"job-{digest}"
