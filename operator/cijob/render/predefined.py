"""GitLab's predefined variables as the pod gets them; docs/variables.md says where each
comes from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cijob.render.expand import Expander

# Known only once the pod exists: read by the kubelet through the downward API. Each attempt
# is a pod of its own, so its uid is what GitLab's per-attempt job ID is here.
RUNTIME: dict[str, dict[str, Any]] = {"CI_JOB_ID": {"fieldRef": {"fieldPath": "metadata.uid"}}}
# Set once the image name is expanded (it may refer to the other variables).
JOB_IMAGE = "CI_JOB_IMAGE"


def variables(
    *,
    builds_dir: str,
    project_dir: str,
    job_name: str,
    timeout_seconds: int,
    started_at: datetime | None,
) -> dict[str, str]:
    """The predefined variables with plain values but CI_JOB_IMAGE (CI_JOB_ID is RUNTIME's)."""
    out = {
        "CI": "true",
        "CI_SERVER": "yes",
        "CI_BUILDS_DIR": builds_dir,
        "CI_PROJECT_DIR": project_dir,
        "CI_JOB_NAME": job_name,
        "CI_JOB_TIMEOUT": str(timeout_seconds),
    }
    if started_at is not None:
        out["CI_JOB_STARTED_AT"] = started_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def runtime_env() -> list[dict[str, Any]]:
    return [{"name": k, "valueFrom": v} for k, v in RUNTIME.items()]


def expander(
    known: Mapping[str, str],
    env_refs: Sequence[Mapping[str, Any]],
    env_from: Sequence[Mapping[str, Any]],
) -> Expander:
    """Expands among `known` plain values; a Secret key's variable and CI_JOB_ID become the
    kubelet's `$(NAME)`, and so does any other name when a whole Secret or ConfigMap may
    define it (its keys are known only to the kubelet)."""
    runtime = [*RUNTIME, *(str(r["name"]) for r in env_refs)]
    return Expander(known, runtime, any_runtime=bool(env_from))
