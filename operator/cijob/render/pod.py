"""The one pure function that turns a CiJob attempt into its Pod."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cijob.api.spec import ImageSpec, PullPolicy, ServiceSpec
from cijob.config import OperatorConfig
from cijob.durations import parse_duration
from cijob.errors import InvalidSpec, PolicyViolation
from cijob.images import InvalidImageReference, derived_hostnames, is_dns1123_label, parse_image
from cijob.job import Job
from cijob.render import expand, names, predefined, script
from cijob.render.template import apply_pod_template
from cijob.services import probes
from cijob.source import render as checkout

BUILDS_DIR = "/builds"
BUILD_CONTAINER = "build"
DOCKER_AUTH_CONFIG = "DOCKER_AUTH_CONFIG"
# Time for the launcher to stop the script before after_script's own limit starts counting.
AFTER_SCRIPT_GRACE_MARGIN_SECONDS = 10

_PULL_POLICY = {
    "always": "Always",
    "if-not-present": "IfNotPresent",
    "never": "Never",
    "Always": "Always",
    "IfNotPresent": "IfNotPresent",
    "Never": "Never",
}
_SHELLS_WITH_C = re.compile(r"^(/usr/local/bin/|/usr/bin/|/bin/)?(sh|bash|ash|dash|zsh)$")

Manifest = dict[str, Any]


def entrypoint_command(
    entrypoint: Sequence[str] | None,
) -> tuple[list[str] | None, list[str] | None]:
    """(command, args) of the build container, as Docker combines ENTRYPOINT and CMD."""
    if entrypoint is None:
        return None, script.shell_launcher()
    if len(entrypoint) == 0 or list(entrypoint) == [""]:
        return script.shell_launcher(), None
    if len(entrypoint) >= 2 and entrypoint[-1] == "-c" and _SHELLS_WITH_C.match(entrypoint[0]):
        return list(entrypoint), [script.LAUNCHER]
    return list(entrypoint), script.shell_launcher()


def _image_of(job: Job, config: OperatorConfig) -> ImageSpec:
    image = job.spec.image if job.spec.image is not None else config.defaults.image
    if image is None:
        raise InvalidSpec("spec.image: the job names no image and the operator has no default")
    return ImageSpec(name=image) if isinstance(image, str) else image


def _services_of(job: Job, config: OperatorConfig) -> list[tuple[str, ServiceSpec]]:
    """(field, service): the field names where an error should point the user."""
    # Services from the operator's configuration are added to every job, as GitLab Runner
    # adds `[runners.docker] services`; they come first so their container names are stable.
    defaults = [
        (f"config defaults.services[{i}]", s) for i, s in enumerate(config.defaults.services)
    ]
    own = [(f"spec.services[{i}]", s) for i, s in enumerate(job.spec.services or [])]
    return [(f, ServiceSpec(name=s) if isinstance(s, str) else s) for f, s in [*defaults, *own]]


def _check_image(field: str, ref: str, config: OperatorConfig) -> None:
    try:
        parsed = parse_image(ref)
    except InvalidImageReference as exc:
        raise InvalidSpec(f"{field}: {exc}") from None
    if config.requireDigest and not parsed.digest:
        raise PolicyViolation(f"{field}: {ref!r} is not pinned by digest (requireDigest is on)")


def _pull_policy(field: str, policy: PullPolicy | None, config: OperatorConfig) -> str | None:
    allowed = config.allowedPullPolicies
    if policy is None:
        # Without a policy of its own a job gets the first the operator allows, so it never
        # falls back on the cluster's default when that default is not allowed.
        return allowed[0] if allowed else None
    k8s = _PULL_POLICY[policy]
    if allowed is not None and k8s not in allowed:
        raise PolicyViolation(
            f"{field}: pull policy {policy} is not allowed (allowed: {', '.join(allowed)})"
        )
    return k8s


def aliases_of(service: ServiceSpec) -> list[str]:
    """The alias field may hold several names separated by commas or spaces."""
    return [a for a in re.split(r"[,\s]+", service.alias or "") if a]


def _without_credentials(variables: Mapping[str, str] | None) -> dict[str, str]:
    # DOCKER_AUTH_CONFIG holds credentials: it becomes the pull Secret, never the pod's env.
    return {k: v for k, v in (variables or {}).items() if k != DOCKER_AUTH_CONFIG}


def project_dir(job: Job) -> str:
    return f"{BUILDS_DIR}/{checkout.project_path(job)}"


def _literal(value: str) -> str:
    """An env value the kubelet passes as written: it expands `$(NAME)` and turns `$$` into
    `$`, which would change a script such as `echo $$` or `echo $(date)`."""
    return value.replace("$", "$$")


def _env(values: Mapping[str, str]) -> list[dict[str, str]]:
    """Env entries of values already in the kubelet's form (see expand.Expander.env_value)."""
    return [{"name": k, "value": v} for k, v in values.items()]


def _env_refs(job: Job) -> list[dict[str, Any]]:
    """The secretKeyRef variables, as references: their values never enter the pod spec."""
    inline = job.spec.variables or {}
    out = []
    for source in job.spec.variablesFrom or []:
        ref, name = source.secretKeyRef, source.variable
        # Inline variables win, as for DOCKER_AUTH_CONFIG; that one is never the pod's.
        if ref is None or name is None or name in inline or name == DOCKER_AUTH_CONFIG:
            continue
        out.append({"name": name, "valueFrom": {"secretKeyRef": ref.model_dump(exclude_none=True)}})
    return out


def _env_from(job: Job) -> list[dict[str, Any]]:
    out = []
    for source in job.spec.variablesFrom or []:
        if source.secretKeyRef is not None:
            continue
        item: dict[str, Any] = {}
        if source.secretRef is not None:
            item["secretRef"] = source.secretRef.model_dump(exclude_none=True)
        if source.configMapRef is not None:
            item["configMapRef"] = source.configMapRef.model_dump(exclude_none=True)
        if source.prefix:
            item["prefix"] = source.prefix
        out.append(item)
    return out


def _service_containers(
    services: list[tuple[str, ServiceSpec]],
    known: Mapping[str, str],
    env_refs: list[dict[str, Any]],
    env_from: list[dict[str, Any]],
    config: OperatorConfig,
    service_ports: Mapping[str, Sequence[int]],
) -> list[Manifest]:
    containers = []
    used = {BUILD_CONTAINER, checkout.CLONE_CONTAINER}
    for i, (field, svc) in enumerate(services):
        _check_image(f"{field}.name", svc.name, config)
        own = _without_credentials(svc.variables)
        expander = predefined.expander({**known, **own}, env_refs, env_from)
        name = next((a for a in aliases_of(svc) if is_dns1123_label(a) and a not in used), None)
        if name is None:
            # an earlier alias may itself be `svc-N`: count on until the fallback is free
            n = i
            while f"svc-{n}" in used:
                n += 1
            name = f"svc-{n}"
        used.add(name)
        c: Manifest = {
            "name": name,
            "image": svc.name,
            # restartPolicy Always makes it a native sidecar: started before the build,
            # stopped by the kubelet once the build container has exited.
            "restartPolicy": "Always",
            "env": [
                *env_refs,
                *predefined.runtime_env(),
                *_env({k: expander.env_value(v) for k, v in {**known, **own}.items()}),
            ],
        }
        check = probes.healthcheck_port(
            f"{field}.variables.{probes.HEALTHCHECK_TCP_PORT}",
            expander.plain(v)
            if (v := {**known, **own}.get(probes.HEALTHCHECK_TCP_PORT)) is not None
            else None,
        )
        port = probes.probe_port(check, service_ports.get(svc.name))
        if port is not None:
            c["startupProbe"] = probes.startup_probe(port, config.servicesWaitTimeoutSeconds)
        if env_from:
            c["envFrom"] = env_from
        if svc.entrypoint is not None:
            c["command"] = list(svc.entrypoint)
        if svc.command is not None:
            c["args"] = list(svc.command)
        policy = _pull_policy(f"{field}.pullPolicy", svc.pullPolicy, config)
        if policy:
            c["imagePullPolicy"] = policy
        containers.append(c)
    return containers


def _host_aliases(services: list[tuple[str, ServiceSpec]]) -> list[Manifest]:
    hostnames: list[str] = []
    for _, svc in services:
        for host in [*aliases_of(svc), *derived_hostnames(svc.name)]:
            if host not in hostnames:
                hostnames.append(host)
    return [{"ip": "127.0.0.1", "hostnames": hostnames}] if hostnames else []


def get_pod(
    job: Job,
    attempt: int,
    config: OperatorConfig,
    pull_secret: str | None = None,
    service_ports: Mapping[str, Sequence[int]] | None = None,
    started_at: datetime | None = None,
) -> Manifest:
    """The Pod of `job`'s attempt `attempt` (from 1), exactly as the README's "The pod" says.

    `service_ports`: the TCP ports each service image exposes (by image name, as expanded),
    read from its registry beforehand; `started_at`: when the attempt starts (CI_JOB_STARTED_AT).
    Raises InvalidSpec or PolicyViolation for what the API server could not check.
    """
    spec = job.spec
    timeout_text = spec.timeout or config.defaults.timeout
    try:
        timeout = parse_duration(timeout_text)
    except ValueError as exc:
        raise InvalidSpec(f"spec.timeout: {exc}") from None
    if timeout < 1:
        # activeDeadlineSeconds must be positive: the API server would refuse the pod
        raise InvalidSpec(f"spec.timeout: {timeout_text!r} is shorter than one second")

    workdir = project_dir(job)
    env_from = _env_from(job)
    env_refs = _env_refs(job)
    job_vars = _without_credentials(job.spec.variables)
    ci_env = predefined.variables(
        builds_dir=BUILDS_DIR,
        project_dir=workdir,
        job_name=job.name,
        timeout_seconds=timeout,
        started_at=started_at,
    )
    ci_env.update(checkout.variables(job))
    # Image names may refer to the job's variables; CI_JOB_IMAGE is the name once expanded.
    named = predefined.expander({**job_vars, **ci_env}, env_refs, env_from)
    image = _image_of(job, config)
    image = image.model_copy(update={"name": expand.image_name("spec.image", image.name, named)})
    _check_image("spec.image", image.name, config)
    services = [
        (f, svc.model_copy(update={"name": expand.image_name(f"{f}.name", svc.name, named)}))
        for f, svc in _services_of(job, config)
    ]
    ci_env[predefined.JOB_IMAGE] = image.name
    # The predefined variables win over the job's own of the same name, as before.
    known = {**job_vars, **ci_env}
    expander = predefined.expander(known, env_refs, env_from)
    job_env = {k: expander.env_value(v) for k, v in known.items()}
    build_env = {
        **checkout.build_env(job),
        **job_env,
        script.SCRIPT_ENV: _literal(script.build_script(spec.beforeScript or [], spec.script)),
        script.AFTER_SCRIPT_ENV: _literal(script.after_script(spec.afterScript or [])),
        script.AFTER_SCRIPT_TIMEOUT_ENV: str(config.afterScriptTimeoutSeconds),
    }
    command, args = entrypoint_command(image.entrypoint)
    build: Manifest = {
        "name": BUILD_CONTAINER,
        "image": image.name,
        "workingDir": workdir,
        "env": [*env_refs, *predefined.runtime_env(), *_env(build_env)],
        "volumeMounts": [{"name": "builds", "mountPath": BUILDS_DIR}],
        # A failed script's last lines become the container's termination message, which
        # the operator copies to status.logTail: the reason is on the resource.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if command is not None:
        build["command"] = command
    if args is not None:
        build["args"] = args
    if env_from:
        build["envFrom"] = env_from
    policy = _pull_policy("spec.image.pullPolicy", image.pullPolicy, config)
    if policy:
        build["imagePullPolicy"] = policy
    if spec.resources is not None:
        build["resources"] = spec.resources.model_dump(exclude_none=True)

    pod_spec: Manifest = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": timeout,
        # Service links would add an env var per Service of the namespace to every job.
        "enableServiceLinks": False,
        "containers": [build],
        "volumes": [{"name": "builds", "emptyDir": {}}, *checkout.volumes(job)],
    }
    if spec.afterScript:
        # A stopped attempt gets SIGTERM, then SIGKILL after the grace period: the launcher
        # stops the script and runs after_script within its limit in between.
        pod_spec["terminationGracePeriodSeconds"] = (
            config.afterScriptTimeoutSeconds + AFTER_SCRIPT_GRACE_MARGIN_SECONDS
        )
    sidecars = _service_containers(services, known, env_refs, env_from, config, service_ports or {})
    clone = checkout.clone_container(job, config, workdir)
    if clone is not None or sidecars:
        # the checkout comes first: an init container the services start after
        pod_spec["initContainers"] = [*([clone] if clone else []), *sidecars]
    if sidecars:
        pod_spec["hostAliases"] = _host_aliases(services)
    pull_secrets = [s.name for s in spec.imagePullSecrets or []]
    if pull_secret and pull_secret not in pull_secrets:
        pull_secrets.append(pull_secret)
    if pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in pull_secrets]
    if spec.nodeSelector:
        pod_spec["nodeSelector"] = dict(spec.nodeSelector)
    if spec.tolerations:
        pod_spec["tolerations"] = [t.model_dump(exclude_none=True) for t in spec.tolerations]
    if spec.serviceAccountName:
        pod_spec["serviceAccountName"] = spec.serviceAccountName

    pod: Manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": names.pod_name(job.name, attempt),
            "namespace": job.namespace,
            "labels": names.pod_labels(job.name, attempt, spec.queueName),
            "annotations": {names.GENERATION_ANNOTATION: str(job.generation)},
            "ownerReferences": [job.owner_reference()],
            "finalizers": [names.TRACKING_FINALIZER],
        },
        "spec": pod_spec,
    }
    return apply_pod_template(pod, config.podTemplate, spec.podTemplate)


def images_of(job: Job, config: OperatorConfig) -> list[tuple[str, str]]:
    """(container, image) of every container the job's pod runs, build first."""
    pod = get_pod(job, 1, config)
    containers = [*pod["spec"]["containers"], *pod["spec"].get("initContainers", [])]
    return [(c["name"], c["image"]) for c in containers]
