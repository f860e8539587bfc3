"""What shapes a job's pod beyond its containers: the platform's `podTemplate`, the job's own."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

# Fields of a pod template that a platform may let jobs override (`overwriteAllowed`).
Overridable = Literal[
    "labels",
    "annotations",
    "priorityClassName",
    "runtimeClassName",
    "affinity",
    "dnsConfig",
    "securityContext",
    "buildContainerSecurityContext",
    "serviceContainerSecurityContext",
    "cloneContainerSecurityContext",
    "automountServiceAccountToken",
]
OVERRIDABLE: tuple[str, ...] = get_args(Overridable)
DEFAULT_OVERWRITE_ALLOWED: tuple[Overridable, ...] = ("labels", "annotations")
# Kubernetes objects passed on as they are: the API server checks them when the pod is made.
_UNTYPED: JsonDict = {"x-kubernetes-preserve-unknown-fields": True}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SeccompProfile(_Model):
    """A seccomp profile, as in a Pod's securityContext."""

    type: Literal["RuntimeDefault", "Localhost", "Unconfined"] = Field(
        description="RuntimeDefault, Localhost or Unconfined."
    )
    localhostProfile: str | None = Field(
        default=None, description="Profile file on the node (type Localhost only)."
    )


class Capabilities(_Model):
    """Linux capabilities added to and dropped from a container's default set."""

    add: list[str] | None = Field(default=None, description="Capabilities to add.")
    drop: list[str] | None = Field(default=None, description="Capabilities to drop (`ALL`).")


class Sysctl(_Model):
    """A namespaced sysctl set for the pod."""

    name: str = Field(description="The sysctl, e.g. `net.ipv4.ip_local_port_range`.")
    value: str = Field(description="Its value.")


class PodSecurityContext(_Model):
    """The pod's securityContext (the fields a CI pod has use for)."""

    runAsUser: int | None = Field(default=None, description="UID of every container's process.")
    runAsGroup: int | None = Field(default=None, description="GID of every container's process.")
    runAsNonRoot: bool | None = Field(default=None, description="Refuse to start as UID 0.")
    fsGroup: int | None = Field(
        default=None, description="Group owning the pod's volumes (/builds)."
    )
    fsGroupChangePolicy: Literal["OnRootMismatch", "Always"] | None = Field(
        default=None, description="When volume ownership is changed to fsGroup."
    )
    supplementalGroups: list[int] | None = Field(
        default=None, description="Further groups of every container's process."
    )
    seccompProfile: SeccompProfile | None = Field(default=None, description="Seccomp profile.")
    seLinuxOptions: dict[str, Any] | None = Field(
        default=None,
        description="SELinux context (user, role, type, level).",
        json_schema_extra=_UNTYPED,
    )
    sysctls: list[Sysctl] | None = Field(default=None, description="Namespaced sysctls.")


class ContainerSecurityContext(_Model):
    """A container's securityContext."""

    runAsUser: int | None = Field(default=None, description="UID of the container's process.")
    runAsGroup: int | None = Field(default=None, description="GID of the container's process.")
    runAsNonRoot: bool | None = Field(default=None, description="Refuse to start as UID 0.")
    allowPrivilegeEscalation: bool | None = Field(
        default=None, description="Whether a process may gain more privileges (setuid)."
    )
    privileged: bool | None = Field(default=None, description="Run privileged (host devices).")
    readOnlyRootFilesystem: bool | None = Field(
        default=None, description="Mount the image's root filesystem read-only."
    )
    capabilities: Capabilities | None = Field(default=None, description="Linux capabilities.")
    seccompProfile: SeccompProfile | None = Field(default=None, description="Seccomp profile.")
    seLinuxOptions: dict[str, Any] | None = Field(
        default=None,
        description="SELinux context (user, role, type, level).",
        json_schema_extra=_UNTYPED,
    )
    procMount: Literal["Default", "Unmasked"] | None = Field(
        default=None, description="/proc mount type."
    )


class PodTemplateFields(_Model):
    """The pod fields a platform sets for every job and a job may set where allowed."""

    labels: dict[str, str] | None = Field(default=None, description="Labels of the pod.")
    annotations: dict[str, str] | None = Field(default=None, description="Annotations of the pod.")
    priorityClassName: str | None = Field(default=None, description="PriorityClass of the pod.")
    runtimeClassName: str | None = Field(default=None, description="RuntimeClass of the pod.")
    affinity: dict[str, Any] | None = Field(
        default=None,
        description="The pod's affinity (nodeAffinity, podAffinity, podAntiAffinity).",
        json_schema_extra=_UNTYPED,
    )
    dnsConfig: dict[str, Any] | None = Field(
        default=None,
        description="The pod's dnsConfig (nameservers, searches, options).",
        json_schema_extra=_UNTYPED,
    )
    securityContext: PodSecurityContext | None = Field(
        default=None, description="The pod's securityContext."
    )
    buildContainerSecurityContext: ContainerSecurityContext | None = Field(
        default=None, description="securityContext of the build container."
    )
    serviceContainerSecurityContext: ContainerSecurityContext | None = Field(
        default=None, description="securityContext of every service container."
    )
    cloneContainerSecurityContext: ContainerSecurityContext | None = Field(
        default=None, description="securityContext of the clone init container, when there is one."
    )
    automountServiceAccountToken: bool | None = Field(
        default=None,
        description="Mount the ServiceAccount's API token into the pod; false unless the job "
        "names a serviceAccountName.",
    )


class PlatformPodTemplate(PodTemplateFields):
    """The operator's `podTemplate` setting: fields every job pod gets, and which of them a
    job's own `spec.podTemplate` may override (GitLab Runner's `*_overwrite_allowed`)."""

    overwriteAllowed: list[Overridable] = Field(
        default_factory=lambda: list(DEFAULT_OVERWRITE_ALLOWED),
        description="Fields a job's spec.podTemplate may set; a job that sets another one "
        "fails with reason PolicyViolation.",
    )
