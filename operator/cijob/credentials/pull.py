"""The job's pull Secret: its DOCKER_AUTH_CONFIG found, resolved and written (thin I/O)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from cijob.config import OperatorConfig
from cijob.credentials import authconfig, helper, matching, secret, sources
from cijob.credentials.scope import LabelSelector, everywhere, selects
from cijob.errors import InvalidSpec, PolicyViolation
from cijob.job import Job
from cijob.kube import Kube
from cijob.render import names
from cijob.render.pod import DOCKER_AUTH_CONFIG, images_of

log = logging.getLogger(__name__)


async def pull_credentials(
    kube: Kube, job: Job, config: OperatorConfig, operator_env: Mapping[str, str]
) -> dict[str, authconfig.Credential]:
    """The job's registry credentials, by registry of its images (none: an empty map)."""
    env = await job_env(kube, job)
    scope = config.credentialScope
    labels: dict[str, str] | None = None

    async def namespace_selected(selector: LabelSelector) -> bool:
        nonlocal labels
        if everywhere(selector):
            return True
        if labels is None:
            labels = await kube.namespace_labels(job.namespace)
        return selects(selector, labels)

    home = sources.read_home_config()
    own = sources.find_docker_auth_config(env, {}, None)
    operator_has = bool(operator_env.get(DOCKER_AUTH_CONFIG) or home)
    if own is None and operator_has and not await namespace_selected(scope.operatorCredentials):
        log.info(
            "job %s/%s: the operator's registry credentials are not for namespace %s "
            "(credentialScope.operatorCredentials)",
            job.namespace, job.name, job.namespace,
        )  # fmt: skip
        operator_env, home = {}, None
    found = own or sources.find_docker_auth_config(env, operator_env, home)
    if found is None:
        return {}
    parsed = authconfig.parse_auth_config(found.text, source_name=found.description)
    registries = matching.registries_of(img for _, img in images_of(job, config))
    timeout = config.credentialHelperTimeoutSeconds
    helpers_allowed = True
    if found.origin == "job" and (parsed.creds_store or parsed.cred_helpers):
        helpers_allowed = await namespace_selected(scope.jobCredentialHelpers)

    def run(name: str, registry: str) -> Any:
        if not helpers_allowed:
            raise PolicyViolation(
                f"{found.description}: credential helper {helper.PREFIX}{name} may not run "
                f"for jobs of namespace {job.namespace} (credentialScope.jobCredentialHelpers)"
            )
        return helper.run_credential_helper(name, registry, timeout=timeout)

    return await asyncio.to_thread(matching.select_credentials, parsed, registries, run)


async def ensure_pull_secret(
    kube: Kube,
    job: Job,
    config: OperatorConfig,
    operator_env: Mapping[str, str],
    creds: Mapping[str, authconfig.Credential] | None = None,
) -> str | None:
    """Writes the job's registry credentials (`creds`, else found now) as a Secret; its
    name, or None if none apply. Raises kube.NameTaken when a Secret of its name is not the
    job's."""
    if creds is None:
        creds = await pull_credentials(kube, job, config, operator_env)
    if not creds:
        return None
    name = secret.pull_secret_name(job.name)
    manifest = secret.get_pull_secret(
        name=name,
        namespace=job.namespace,
        owner=job.owner_reference(),
        creds=creds,
        labels={names.JOB_LABEL: job.name, **names.MANAGED_BY},
    )
    await kube.apply_secret(job.namespace, manifest, job.uid)
    return name


async def job_env(kube: Kube, job: Job) -> dict[str, str]:
    """The job's variables that can hold DOCKER_AUTH_CONFIG: inline ones win, as a
    container's `env` wins over `envFrom`; among sources the last one wins."""
    inline = job.spec.variables or {}
    if DOCKER_AUTH_CONFIG in inline:
        return {DOCKER_AUTH_CONFIG: inline[DOCKER_AUTH_CONFIG]}
    for i, source in enumerate(job.spec.variablesFrom or []):
        # One key as one variable is a container's `env`: it wins over whole objects.
        key_ref = source.secretKeyRef
        if key_ref is None or source.variable != DOCKER_AUTH_CONFIG:
            continue
        data = await kube.secret_data(job.namespace, key_ref.name)
        if data is not None and key_ref.key in data:
            return {DOCKER_AUTH_CONFIG: data[key_ref.key]}
        if not key_ref.optional:
            missing = "not found" if data is None else f"has no key {key_ref.key!r}"
            raise InvalidSpec(
                f"spec.variablesFrom[{i}]: Secret {key_ref.name!r} {missing} in namespace "
                f"{job.namespace}"
            )
    env: dict[str, str] = {}
    for i, source in enumerate(job.spec.variablesFrom or []):
        if source.secretKeyRef is not None:
            continue
        ref = source.secretRef or source.configMapRef
        if ref is None:
            raise InvalidSpec(f"spec.variablesFrom[{i}]: needs secretRef or configMapRef")
        kind = "Secret" if source.secretRef is not None else "ConfigMap"
        read = kube.secret_data if source.secretRef is not None else kube.configmap_data
        data = await read(job.namespace, ref.name)
        if data is None:
            if ref.optional:
                continue
            raise InvalidSpec(
                f"spec.variablesFrom[{i}]: {kind} {ref.name!r} not found in namespace "
                f"{job.namespace}"
            )
        env.update({(source.prefix or "") + k: v for k, v in data.items()})
    return env
