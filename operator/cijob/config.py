"""The operator's configuration (the Helm values that reach it), as a typed model."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from cijob.api.spec import ServiceSpec

CONFIG_FILE_ENV = "CIJOB_CONFIG_FILE"
CONFIG_ENV = "CIJOB_CONFIG"

K8sPullPolicy = Literal["Always", "IfNotPresent", "Never"]


class Defaults(BaseModel):
    """What a job gets when it says nothing, like GitLab Runner's `[runners.docker]`."""

    model_config = ConfigDict(extra="forbid")

    image: str | None = Field(
        default=None, description="Build image of jobs that name none (`--docker-image`)."
    )
    services: list[str | ServiceSpec] = Field(
        default_factory=list, description="Services added to every job."
    )
    timeout: str = Field(default="1h", description="Timeout of jobs that set none.")


class OperatorConfig(BaseModel):
    """Everything the operator is told; read from a YAML/JSON file or the environment."""

    model_config = ConfigDict(extra="forbid")

    defaults: Defaults = Field(default_factory=Defaults)
    allowedPullPolicies: list[K8sPullPolicy] | None = Field(
        default=None, description="Pull policies jobs may ask for; all when unset."
    )
    requireDigest: bool = Field(
        default=False, description="Refuse jobs whose images are not pinned by digest."
    )
    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; all when empty."
    )
    imagePullGraceSeconds: int = Field(
        default=60,
        ge=0,
        description="How long a pod may sit in ErrImagePull/ImagePullBackOff before the "
        "attempt fails with ImagePullFailed.",
    )
    pendingTimeoutSeconds: int = Field(
        default=1800,
        ge=1,
        description="How long a job may wait to start its attempt (a quota that is full, a "
        "ServiceAccount not there yet, no node that can take the pod) before it fails with "
        "reason PendingTimeout; this wait is not part of the job's timeout.",
    )
    afterScriptTimeoutSeconds: int = Field(
        default=300, ge=1, description="Limit of after_script, as GitLab's 5 minutes."
    )
    credentialHelperTimeoutSeconds: float = Field(
        default=10.0, gt=0, description="Limit of one docker-credential-<name> call."
    )
    events: bool = Field(
        default=True, description="Post Kubernetes Events on the CiJob for its transitions."
    )
    workers: int = Field(
        default=32,
        ge=1,
        le=512,
        description="Jobs reconciled at once; the API client keeps twice as many connections.",
    )


def load_config(path: str | None = None, env: Mapping[str, str] | None = None) -> OperatorConfig:
    """Reads the configuration: the file named by `path` or $CIJOB_CONFIG_FILE, else the
    YAML/JSON text in $CIJOB_CONFIG, else the defaults."""
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_FILE_ENV)
    text = Path(path).read_text() if path else env.get(CONFIG_ENV, "") or "{}"
    data = yaml.safe_load(text) or {}
    return OperatorConfig.model_validate(data)


def dump_config(config: OperatorConfig) -> str:
    return json.dumps(config.model_dump(mode="json", exclude_none=True), indent=2)
