"""The CiJob spec: what `.gitlab-ci.yml` says of one job, as pydantic models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from cijob.api import rules
from cijob.api.podtemplate import PodTemplateFields

PullPolicy = Literal["always", "if-not-present", "never", "Always", "IfNotPresent", "Never"]

RetryReason = Literal[
    "ScriptFailure",
    "ImagePullFailed",
    "Timeout",
    "PodEvicted",
    "PodDeleted",
    "OOMKilled",
    "ServiceNotReady",
    "SourceFetchFailed",
]


class Model(BaseModel):
    """Base for API objects: unknown fields are rejected, as the structural schema does."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ImageSpec(Model):
    """The map form of `image:` (GitLab's `image: {name, entrypoint, pull_policy}`)."""

    name: Annotated[
        str,
        Field(
            description="Image reference: `name`, `name:tag`, `name@sha256:...` or "
            "`name:tag@sha256:...`; no tag means `latest`.",
            json_schema_extra=rules.image_reference("name"),
        ),
    ]
    entrypoint: list[str] | None = Field(
        default=None,
        description='Overrides the image ENTRYPOINT. `[""]` runs the script without one; '
        '`["/bin/sh", "-c"]` passes the script as one string, as older Docker needed.',
    )
    pullPolicy: PullPolicy | None = Field(
        default=None,
        description="When to pull: always, if-not-present or never "
        "(Kubernetes spellings accepted too). Defaults to the cluster's rule.",
    )


class ServiceSpec(Model):
    """The map form of one `services:` entry; runs as a native sidecar beside the build."""

    name: Annotated[
        str,
        Field(
            description="Service image reference, in the same forms as `image`.",
            json_schema_extra=rules.image_reference("name"),
        ),
    ]
    alias: str | None = Field(
        default=None,
        description="Extra host names for the service, separated by commas or spaces; each a "
        "DNS-1123 label. The first one also names the container.",
        json_schema_extra=rules.aliases(),
    )
    entrypoint: list[str] | None = Field(
        default=None,
        description="Overrides the service image's ENTRYPOINT (the container command).",
    )
    command: list[str] | None = Field(
        default=None, description="Overrides the service image's CMD (the container args)."
    )
    variables: dict[str, str] | None = Field(
        default=None,
        description="Variables added to the job's for this service only. HEALTHCHECK_TCP_PORT "
        "names the port the build waits for (else the lowest one its image exposes).",
    )
    pullPolicy: PullPolicy | None = Field(default=None, description="As for `image.pullPolicy`.")


class LocalObjectReference(Model):
    """A reference to an object in the job's namespace, by name."""

    name: str = Field(description="Name of the object in the CiJob's namespace.", min_length=1)


class OptionalObjectReference(LocalObjectReference):
    """A Secret or ConfigMap in the job's namespace whose keys become variables."""

    optional: bool | None = Field(
        default=None, description="Start the job even when the object does not exist."
    )


class SecretKeySelector(Model):
    """One key of a Secret in the job's namespace (a container's `valueFrom.secretKeyRef`)."""

    name: str = Field(description="Name of the Secret in the CiJob's namespace.", min_length=1)
    key: str = Field(description="The key whose value the variable gets.", min_length=1)
    optional: bool | None = Field(
        default=None, description="Start the job even when the Secret or the key does not exist."
    )


class VariablesFromSource(Model):
    """Like a container's `envFrom` (every key of a Secret or ConfigMap becomes a variable), or,
    with `secretKeyRef` and `variable`, like one `env` entry's `valueFrom.secretKeyRef`."""

    model_config = ConfigDict(json_schema_extra=rules.variables_from_source())

    secretRef: OptionalObjectReference | None = Field(
        default=None, description="A Secret; may hold DOCKER_AUTH_CONFIG for private registries."
    )
    configMapRef: OptionalObjectReference | None = Field(default=None, description="A ConfigMap.")
    secretKeyRef: SecretKeySelector | None = Field(
        default=None,
        description="One key of a Secret, as the variable named by `variable`; "
        "`variable: DOCKER_AUTH_CONFIG` gives registry credentials.",
    )
    variable: str | None = Field(
        default=None,
        min_length=1,
        description="The variable that `secretKeyRef` sets (only with secretKeyRef).",
    )
    prefix: str | None = Field(
        default=None, description="Prepended to every key (secretRef and configMapRef only)."
    )


class RetrySpec(Model):
    """GitLab's `retry:`: how many more attempts, and for which failure reasons."""

    max: int = Field(default=0, ge=0, le=2, description="Further attempts after the first (0..2).")
    when: list[RetryReason] | None = Field(
        default=None,
        description="Reasons that make a retry; all retryable reasons when omitted.",
    )
    exitCodes: list[Annotated[int, Field(ge=0, le=255)]] | None = Field(
        default=None,
        max_length=32,
        description="GitLab's `retry:exit_codes`: retry only when the script exited with one "
        "of these codes (and, with `when`, only for those reasons too).",
    )


class Toleration(Model):
    """A pod toleration, passed to the pod unchanged."""

    key: str | None = Field(default=None, description="Taint key the toleration applies to.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (default Equal)."
    )
    value: str | None = Field(default=None, description="Taint value to match.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; all when empty."
    )
    tolerationSeconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated."
    )


Quantity = Annotated[
    int | str,
    Field(
        description="A Kubernetes quantity (`500m`, `1Gi`).",
        json_schema_extra=rules.int_or_string(),
    ),
]


class Resources(Model):
    """Compute resources of the build container."""

    requests: dict[str, Quantity] | None = Field(default=None, description="Requested resources.")
    limits: dict[str, Quantity] | None = Field(default=None, description="Resource limits.")


class GitSource(Model):
    """A git repository checked out into the working directory before anything else starts."""

    url: str = Field(
        description="Repository URL: https://, http://, ssh://, git://, or scp-like "
        "`git@host:group/project.git`; never with a password (use `secretRef`).",
        json_schema_extra=rules.git_url(),
    )
    ref: str | None = Field(
        default=None,
        description="Branch or tag to check out; the remote's HEAD when omitted.",
        json_schema_extra=rules.git_ref(),
    )
    commit: str | None = Field(
        default=None,
        description="Exact commit (40 or 64 hex characters), checked out detached and verified.",
        json_schema_extra=rules.git_commit(),
    )
    depth: int | None = Field(
        default=None,
        ge=0,
        description="History depth to fetch (GIT_DEPTH); 0 fetches the full history. Default 20.",
    )
    submodules: Literal["none", "normal", "recursive"] | None = Field(
        default=None,
        description="Submodules to check out (GIT_SUBMODULE_STRATEGY): none (default), normal "
        "or recursive.",
    )
    secretRef: LocalObjectReference | None = Field(
        default=None,
        description="A Secret in the job's namespace with the credentials: "
        "kubernetes.io/basic-auth (`username`, `password` or `token`) or kubernetes.io/ssh-auth "
        "(`ssh-privatekey`, `known_hosts`). Mounted into the clone container only.",
    )


class SourceSpec(Model):
    """Where the job's code comes from."""

    git: GitSource = Field(description="A git repository.")


class CiJobSpec(Model):
    """One CI job: an image, its services, variables and scripts."""

    model_config = ConfigDict(json_schema_extra=rules.spec_rules())

    image: str | ImageSpec | None = Field(
        default=None,
        description="The build image, as a string (`ruby:2.6`) or a map "
        "`{name, entrypoint, pullPolicy}`. The operator's `defaults.image` when omitted.",
        json_schema_extra=rules.image_field("image"),
    )
    services: list[str | ServiceSpec] | None = Field(
        default=None,
        description="Service containers, each a string (`postgres:11.7`) or a map "
        "`{name, alias, entrypoint, command, variables, pullPolicy}`. They run as native sidecars "
        "reachable at 127.0.0.1 under their aliases and the host names derived from the image.",
        json_schema_extra=rules.services_field(),
    )
    variables: dict[str, str] | None = Field(
        default=None,
        description="Variables for the build and every service. DOCKER_AUTH_CONFIG here "
        "gives registry credentials and is never put into the pod.",
    )
    variablesFrom: list[VariablesFromSource] | None = Field(
        default=None,
        max_length=32,
        description="Secrets and ConfigMaps whose keys become variables, or one key of a "
        "Secret as one variable. Values stay in the Secret: the pod refers to them.",
    )
    beforeScript: list[str] | None = Field(
        default=None, description="Commands run before `script`, in the same shell."
    )
    script: list[str] = Field(
        min_length=1,
        description="Commands of the job, each echoed then run; the first that fails ends it "
        "and its exit code is the job's.",
    )
    afterScript: list[str] | None = Field(
        default=None,
        description="Commands run after the script, even when it failed, in a new shell, "
        "limited to 5 minutes; their failure does not change the result.",
    )
    source: SourceSpec | None = Field(
        default=None,
        description="The code to check out into `/builds/<project>` before the script runs "
        "(by the `clone` init container); an empty directory when omitted.",
    )
    project: str | None = Field(
        default=None,
        description="Project path; the working directory is `/builds/<project>` (the "
        "repository's path with `source`, else `<namespace>/<name>`, when omitted).",
        json_schema_extra=rules.project_path(),
    )
    timeout: str | None = Field(
        default=None,
        description="Longest run of one attempt, like `1h`, `30m`, `1h30m`, `90s`; the "
        "operator's `defaults.timeout` when omitted.",
        json_schema_extra=rules.duration(),
    )
    retry: RetrySpec | None = Field(default=None, description="Retries for failed attempts.")
    imagePullSecrets: list[LocalObjectReference] | None = Field(
        default=None, description="Existing pull Secrets, merged with the generated one."
    )
    resources: Resources | None = Field(
        default=None, description="Resource requests and limits of the build container."
    )
    nodeSelector: dict[str, str] | None = Field(
        default=None, description="Node labels the pod must run on."
    )
    tolerations: list[Toleration] | None = Field(default=None, description="Pod tolerations.")
    serviceAccountName: str | None = Field(
        default=None, description="Service account the pod runs as."
    )
    queueName: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Kueue LocalQueue of the job's pods: set as their "
        "`kueue.x-k8s.io/queue-name` label, so Kueue admits each pod (docs/lifecycle.md).",
    )
    podTemplate: PodTemplateFields | None = Field(
        default=None,
        description="Pod labels, annotations, scheduling and security contexts, over the "
        "platform's podTemplate; only the fields the platform's overwriteAllowed lists.",
    )
    cancel: bool | None = Field(
        default=None, description="Set to true to cancel a running job without deleting it."
    )
    ttlSecondsAfterFinished: int | None = Field(
        default=None,
        ge=0,
        description="Delete the CiJob (and its pods) this long after it finished.",
    )
