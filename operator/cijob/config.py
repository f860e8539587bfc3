"""The operator's configuration (the Helm values that reach it), as a typed model."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cijob.api.podtemplate import PlatformPodTemplate
from cijob.api.spec import ServiceSpec
from cijob.archive.settings import LogArchive
from cijob.credentials.scope import CredentialScope
from cijob.durations import parse_duration

CONFIG_FILE_ENV = "CIJOB_CONFIG_FILE"
CONFIG_ENV = "CIJOB_CONFIG"

K8sPullPolicy = Literal["Always", "IfNotPresent", "Never"]
# The operator's own image as the chart names it by default: it ships git for the clone
# container (the chart passes the image it really runs, so this is for runs outside it).
DEFAULT_HELPER_IMAGE = "cijob-operator:0.1.0"


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

    @field_validator("timeout")
    @classmethod
    def _a_duration(cls, value: str) -> str:
        # Refused at start-up, in one line, rather than failing every job that sets none.
        if parse_duration(value) < 1:
            raise ValueError("must be at least one second")
        return value


class MetricsConfig(BaseModel):
    """GET /metrics on the health port (docs/metrics.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Count and serve the metrics.")
    namespaceLabel: bool = Field(
        default=False,
        description="Add a `namespace` label to the job metrics (one series per namespace).",
    )


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
    servicesWaitTimeoutSeconds: int = Field(
        default=30,
        ge=1,
        description="How long the build waits for each service to accept connections on its "
        "port (HEALTHCHECK_TCP_PORT or the image's exposed one), as GitLab Runner's "
        "wait_for_services_timeout; past it the attempt fails with reason ServiceNotReady.",
    )
    credentialHelperTimeoutSeconds: float = Field(
        default=10.0, gt=0, description="Limit of one docker-credential-<name> call."
    )
    helperImage: str = Field(
        default=DEFAULT_HELPER_IMAGE,
        min_length=1,
        description="Image of the `clone` init container of jobs with `spec.source`: it needs "
        "git and sh. The operator's own image by default.",
    )
    events: bool = Field(
        default=True, description="Post Kubernetes Events on the CiJob for its transitions."
    )
    podTemplate: PlatformPodTemplate = Field(
        default_factory=PlatformPodTemplate,
        description="What every job pod gets (labels, scheduling, security contexts) and "
        "which of it a job may override (docs/pod-policy.md).",
    )
    credentialScope: CredentialScope = Field(
        default_factory=CredentialScope,
        description="Namespaces whose jobs get the operator's credentials and may run "
        "credential helpers (docs/pod-policy.md).",
    )
    workers: int = Field(
        default=32,
        ge=1,
        le=512,
        description="Jobs reconciled at once; the API client keeps twice as many connections.",
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    maxRunningJobsPerNamespace: int | None = Field(
        default=None,
        ge=1,
        description="Jobs of one namespace that may have an attempt at once; further ones stay "
        "Pending, first come first served (docs/lifecycle.md). None: no limit.",
    )
    logArchive: LogArchive | None = Field(
        default=None,
        description="Where each ended attempt's container logs are kept (docs/logs.md); "
        "none when unset.",
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


class ConfigError(Exception):
    """A configuration the operator cannot start with; its message is one line naming the
    source, the key and what is wrong."""


def read_config(path: str | None = None, env: Mapping[str, str] | None = None) -> OperatorConfig:
    """`load_config`, with every way it can fail (no such file, not YAML, a bad key or
    value) as one ConfigError."""
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_FILE_ENV)
    source = path or f"${CONFIG_ENV}"
    try:
        text = Path(path).read_text() if path else env.get(CONFIG_ENV, "") or "{}"
    except OSError as e:
        raise ConfigError(f"{source}: cannot read it: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not YAML: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not YAML: {_yaml_problem(e)}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of settings, got {_kind(data)}")
    try:
        return OperatorConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source}: {explain(e, data)}") from None


def explain(error: ValidationError, data: Any) -> str:
    """pydantic's errors as `key.path: what is wrong`, joined on one line."""
    problems: dict[str, list[str]] = {}
    for item in error.errors():
        where = dotted(item["loc"], data, missing=item["type"] == "missing")
        problems.setdefault(where or "(top level)", []).append(_what(item))
    return "; ".join(f"{where}: {' or '.join(dict.fromkeys(w))}" for where, w in problems.items())


def dotted(loc: Sequence[int | str], data: Any, missing: bool = False) -> str:
    """`defaults.services[0].name` for pydantic's location. Steps that are not keys of the
    data (the names of a union's members) are left out."""
    path, node = "", data
    for i, step in enumerate(loc):
        if isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
            path, node = f"{path}[{step}]", node[step]
        elif isinstance(node, Mapping) and step in node:
            path, node = f"{path}.{step}" if path else str(step), node[step]
        elif missing and i == len(loc) - 1:
            path = f"{path}.{step}" if path else str(step)
    return path


def _what(item: Mapping[str, Any]) -> str:
    if item["type"] == "extra_forbidden":
        return "unknown key"
    if item["type"] == "missing":
        return "required, not given"
    message = str(item["msg"])
    message = message.removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    value = item.get("input")
    if isinstance(value, (Mapping, list)):
        return message
    shown = repr(value)
    return f"{message} (got {shown if len(shown) <= 60 else shown[:57] + '...'})"


def _kind(data: Any) -> str:
    if isinstance(data, list):
        return "a list"
    return "a string" if isinstance(data, str) else f"a {type(data).__name__}"


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem
