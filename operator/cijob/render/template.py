"""The platform's podTemplate and the job's own, merged and laid over a rendered pod."""

from __future__ import annotations

import copy
from typing import Any

from cijob.api.podtemplate import PlatformPodTemplate, PodTemplateFields
from cijob.errors import PolicyViolation
from cijob.source.render import CLONE_CONTAINER

Manifest = dict[str, Any]

TMP_VOLUME = "tmp"
BUILDS_VOLUME = "builds"
_POD_FIELDS = ("priorityClassName", "runtimeClassName", "affinity", "dnsConfig", "securityContext")


def merged_fields(platform: PlatformPodTemplate, job: PodTemplateFields | None) -> Manifest:
    """The template a job's pod gets: the platform's fields, each overridden by the job's own
    where the platform allows it (docs/pod-policy.md). Maps are merged one level deep (the
    job's keys win), anything else is replaced. Raises PolicyViolation naming the first field
    a job sets that the platform does not let it set."""
    base = platform.model_dump(mode="json", exclude_none=True, exclude={"overwriteAllowed"})
    own = job.model_dump(mode="json", exclude_none=True) if job is not None else {}
    refused = [f for f in own if f not in platform.overwriteAllowed]
    if refused:
        allowed = ", ".join(platform.overwriteAllowed) or "none"
        raise PolicyViolation(
            f"spec.podTemplate.{refused[0]}: the platform does not let jobs set {refused[0]} "
            f"(podTemplate.overwriteAllowed: {allowed})"
        )
    out = dict(base)
    for key, value in own.items():
        under = out.get(key)
        if isinstance(under, dict) and isinstance(value, dict):
            value = {**under, **value}
        out[key] = value
    return out


def apply_pod_template(
    pod: Manifest, platform: PlatformPodTemplate, job: PodTemplateFields | None
) -> Manifest:
    """`pod` with the merged template laid over it. The operator's own labels and annotations
    win over the template's; the ServiceAccount token is mounted only when the template says
    so or, when it says nothing, when the job names a serviceAccountName."""
    fields = merged_fields(platform, job)
    out = copy.deepcopy(pod)
    meta, spec = out["metadata"], out["spec"]
    for key in ("labels", "annotations"):
        if fields.get(key):
            meta[key] = {**fields[key], **meta.get(key, {})}
    for key in _POD_FIELDS:
        if key in fields:
            spec[key] = fields[key]
    automount = fields.get("automountServiceAccountToken")
    spec["automountServiceAccountToken"] = (
        bool(spec.get("serviceAccountName")) if automount is None else automount
    )
    build = fields.get("buildContainerSecurityContext")
    for c in spec["containers"]:
        if build:
            c["securityContext"] = build
    for c in spec.get("initContainers", []):
        if c.get("restartPolicy") == "Always":
            context = fields.get("serviceContainerSecurityContext")
        elif c["name"] == CLONE_CONTAINER:
            context = fields.get("cloneContainerSecurityContext")
        else:
            context = None
        if context:
            c["securityContext"] = context
    if build and build.get("readOnlyRootFilesystem"):
        _writable_tmp(spec)
    if _not_root(fields.get("securityContext") or {}, build or {}):
        for c in spec["containers"]:
            # The launcher makes the project directory as the build's own user.
            builds = next(m for m in c["volumeMounts"] if m["name"] == BUILDS_VOLUME)
            c["workingDir"] = builds["mountPath"]
    return out


def _not_root(pod: Manifest, container: Manifest) -> bool:
    user = container.get("runAsUser", pod.get("runAsUser"))
    non_root = container.get("runAsNonRoot", pod.get("runAsNonRoot"))
    return bool(non_root) or (user is not None and user != 0)


def _writable_tmp(spec: Manifest) -> None:
    # With a read-only root filesystem the build still needs a scratch /tmp (compilers, test
    # runners); /builds is already an emptyDir.
    names = {v["name"] for v in spec.get("volumes", [])}
    if TMP_VOLUME in names:
        return
    spec.setdefault("volumes", []).append({"name": TMP_VOLUME, "emptyDir": {}})
    for c in spec["containers"]:
        c.setdefault("volumeMounts", []).append({"name": TMP_VOLUME, "mountPath": "/tmp"})
