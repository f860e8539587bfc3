"""The pod parts of `spec.source`: the clone init container, its volumes, the CI_* variables."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from cijob.api import rules
from cijob.api.spec import GitSource
from cijob.config import OperatorConfig
from cijob.job import Job
from cijob.source import clone

CLONE_CONTAINER = "clone"
DEFAULT_DEPTH = 20
CREDENTIALS_VOLUME = "git-credentials"
PRIVATE_VOLUME = "clone-private"
_PROJECT = re.compile(rules.PROJECT)

Manifest = dict[str, Any]


def git_of(job: Job) -> GitSource | None:
    return job.spec.source.git if job.spec.source is not None else None


def repository_path(url: str) -> str | None:
    """`group/project` of a repository URL (scp-like too), or None when it has no usable one."""
    path = urlsplit(url).path if "://" in url else url.partition(":")[2]
    path = path.strip("/").removesuffix(".git").strip("/")
    parts = path.split("/")
    if not path or not _PROJECT.match(path) or any(p in (".", "..") for p in parts):
        return None
    return path


def project_path(job: Job) -> str:
    """CI_PROJECT_PATH: `spec.project`, else the repository's path, else `<namespace>/<name>`."""
    git = git_of(job)
    found = repository_path(git.url) if git is not None else None
    return job.spec.project or found or f"{job.namespace}/{job.name}"


def credential_url(url: str) -> str:
    """What git's credential helper is scoped to: the repository's scheme, host and port, so a
    submodule on another host never gets the job's credentials."""
    if "://" not in url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def variables(job: Job) -> dict[str, str]:
    """The CI_* variables known before the clone; the commit's come from the clone itself."""
    git = git_of(job)
    if git is None:
        return {}
    path = project_path(job)
    namespace, _, name = path.rpartition("/")
    return {
        "CI_REPOSITORY_URL": git.url,
        "CI_PROJECT_PATH": path,
        "CI_PROJECT_NAME": name,
        "CI_PROJECT_NAMESPACE": namespace,
    }


def build_env(job: Job) -> dict[str, str]:
    """The build container's extras: the launcher sources the clone's variables file, and git
    there trusts a checkout another user made."""
    if git_of(job) is None:
        return {}
    return {
        clone.ENV_FILE_ENV: clone.SOURCE_ENV_FILE,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
    }


def clone_container(job: Job, config: OperatorConfig, workdir: str) -> Manifest | None:
    """The `clone` init container (None without `spec.source`): it runs before the services."""
    git = git_of(job)
    if git is None:
        return None
    env = {
        clone.URL_ENV: git.url,
        clone.REF_ENV: git.ref or "",
        clone.COMMIT_ENV: git.commit or "",
        clone.DEPTH_ENV: str(DEFAULT_DEPTH if git.depth is None else git.depth),
        clone.SUBMODULES_ENV: git.submodules or "none",
        clone.CREDENTIAL_URL_ENV: credential_url(git.url),
        clone.DIR_ENV: workdir,
        clone.ENV_FILE_ENV: clone.SOURCE_ENV_FILE,
        clone.PRIVATE_DIR_ENV: clone.PRIVATE_DIR,
        clone.CREDENTIALS_DIR_ENV: clone.CREDENTIALS_DIR,
    }
    mounts: list[Manifest] = [
        {"name": "builds", "mountPath": "/builds"},
        {"name": PRIVATE_VOLUME, "mountPath": clone.PRIVATE_DIR},
    ]
    if git.secretRef is not None:
        mounts.append(
            {"name": CREDENTIALS_VOLUME, "mountPath": clone.CREDENTIALS_DIR, "readOnly": True}
        )
    return {
        "name": CLONE_CONTAINER,
        "image": config.helperImage,
        "command": clone.command(),
        # the kubelet expands $(NAME) in env values: `$$` keeps a `$` of a URL or ref as written
        "env": [{"name": k, "value": v.replace("$", "$$")} for k, v in env.items()],
        "volumeMounts": mounts,
        "terminationMessagePolicy": "File",
    }


def volumes(job: Job) -> list[Manifest]:
    """The clone container's own volumes: a private scratch space and the Secret's files."""
    git = git_of(job)
    if git is None:
        return []
    out: list[Manifest] = [
        {"name": PRIVATE_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}
    ]
    if git.secretRef is not None:
        # readable by whichever user the helper image runs as; only the clone container mounts it
        secret = {"secretName": git.secretRef.name, "defaultMode": 0o444}
        out.append({"name": CREDENTIALS_VOLUME, "secret": secret})
    return out
