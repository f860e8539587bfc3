"""The job's `kubernetes.io/dockerconfigjson` pull Secret, built as a plain manifest."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cijob.credentials.authconfig import (
    DOCKER_HUB,
    DOCKER_HUB_SERVER_ADDRESS,
    Credential,
    registry_key,
)

SECRET_TYPE = "kubernetes.io/dockerconfigjson"
DATA_KEY = ".dockerconfigjson"
REGISTRIES_ANNOTATION = "cijob.dev/registries"
NAME_SUFFIX = "-registry-credentials"
MAX_NAME_LENGTH = 253
_OWNER_FIELDS = ("apiVersion", "kind", "name", "uid")


def dockerconfigjson(creds: Mapping[str, Credential]) -> str:
    """The `.dockerconfigjson` text for `creds` (registry as the image spells it -> credential).

    Each entry has `username`, `password` and `auth` (base64 `user:password`), which is what
    the kubelet reads; an identity token goes in `identitytoken`, which the kubelet ignores.
    Docker Hub is written twice: under `docker.io`, which the kubelet's keyring matches against
    the normalised image name (`docker.io/library/ruby`), and under `https://index.docker.io/v1/`,
    its fallback for any Hub image and the key Docker and `kubectl create secret` write.
    Keys are sorted and the output compact, so equal input gives equal bytes.
    """
    auths: dict[str, dict[str, str]] = {}
    for registry in sorted(creds):
        entry = _entry(creds[registry])
        for key in _secret_keys(registry):
            auths.setdefault(key, entry)
    return json.dumps({"auths": auths}, sort_keys=True, separators=(",", ":"))


def identity_token_registries(creds: Mapping[str, Credential]) -> list[str]:
    """Registries whose only credential is an identity token: the kubelet will pull anonymously.

    Worth a warning event: the kubelet reads only user name and password from pull secrets.
    """
    return sorted(
        registry
        for registry, credential in creds.items()
        if credential.identity_token is not None
        and not (credential.username or credential.password)
    )


def get_pull_secret(
    *,
    name: str,
    namespace: str,
    owner: Mapping[str, Any],
    creds: Mapping[str, Credential],
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """The Secret manifest: owned by `owner` (the CiJob), annotated with its registries.

    The annotation lists registries, never credentials, so `kubectl describe` shows what the
    job can pull from without revealing anything.
    """
    missing = [key for key in _OWNER_FIELDS if not owner.get(key)]
    if missing:
        raise ValueError(f"owner lacks {', '.join(missing)}")
    payload = dockerconfigjson(creds).encode("utf-8")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": {REGISTRIES_ANNOTATION: ",".join(sorted(creds))},
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": owner["name"],
                    "uid": owner["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "type": SECRET_TYPE,
        "data": {DATA_KEY: base64.b64encode(payload).decode("ascii")},
    }


def pull_secret_name(job_name: str) -> str:
    """`<job>-registry-credentials`; a name too long for that keeps a hash of the job's name.

    The result is a DNS-1123 subdomain of at most 253 characters whenever `job_name` is one, and
    two long names that share a prefix still get different Secrets.
    """
    name = job_name + NAME_SUFFIX
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha256(job_name.encode("utf-8")).hexdigest()[:10]
    room = MAX_NAME_LENGTH - len(NAME_SUFFIX) - len(digest) - 1
    # Cutting may leave a '-' or '.' at the end, which would make an invalid label.
    prefix = job_name[:room].rstrip("-.")
    return f"{prefix}-{digest}{NAME_SUFFIX}" if prefix else f"{digest}{NAME_SUFFIX}"


def _entry(credential: Credential) -> dict[str, str]:
    entry: dict[str, str] = {}
    if credential.username or credential.password or credential.identity_token is None:
        pair = f"{credential.username}:{credential.password}".encode()
        entry["username"] = credential.username
        entry["password"] = credential.password
        entry["auth"] = base64.b64encode(pair).decode("ascii")
    if credential.identity_token is not None:
        entry["identitytoken"] = credential.identity_token
    return entry


def _secret_keys(registry: str) -> list[str]:
    if registry_key(registry) != DOCKER_HUB:
        return [registry]
    return list(dict.fromkeys([registry, DOCKER_HUB_SERVER_ADDRESS]))
