"""An image's config read from its registry (the Distribution API), as a pull would read it.

Why a small client on aiohttp rather than a library or skopeo: docs/services.md."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from cijob.credentials.authconfig import Credential
from cijob.images import DOCKER_HUB, ImageRef

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
# The node's platform: the operator's images run on linux/amd64 nodes.
PLATFORM = ("linux", "amd64")
HUB_ENDPOINT = "registry-1.docker.io"
# An image config is a few KiB; a registry sending more is not answered further.
MAX_DOCUMENT = 4 << 20
_PARAM = re.compile(r'([A-Za-z_]+)="([^"]*)"')


class RegistryError(Exception):
    """The registry could not be read; the message names the registry, never a credential."""


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """A `WWW-Authenticate` header: `Bearer realm="...",service="...",scope="..."`."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    return Challenge(scheme.lower(), dict(_PARAM.findall(rest)))


def _loopback(host: str) -> bool:
    name = host[1:].partition("]")[0] if host.startswith("[") else host.rpartition(":")[0] or host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def base_url(registry: str) -> str:
    """HTTPS, but for a registry on loopback, which Docker and containerd reach over HTTP."""
    host = HUB_ENDPOINT if registry == DOCKER_HUB else registry
    return f"{'http' if _loopback(host) else 'https'}://{host}/v2"


def token_url(challenge: Challenge, repository: str) -> str:
    query = {"scope": f"repository:{repository}:pull"}
    if "service" in challenge.params:
        query["service"] = challenge.params["service"]
    return f"{challenge.params['realm']}?{urlencode(query)}"


def pick_manifest(index: Mapping[str, Any]) -> str | None:
    """The digest of the linux/amd64 manifest of an image index (manifest list)."""
    for m in index.get("manifests") or []:
        platform = m.get("platform") or {}
        if (platform.get("os"), platform.get("architecture")) == PLATFORM:
            return str(m["digest"])
    return None


def _basic(credential: Credential) -> str:
    pair = f"{credential.username}:{credential.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


class Client:
    """Reads manifests and configs of one repository, answering the registry's challenge
    once with the job's credential (or anonymously)."""

    def __init__(
        self, session: aiohttp.ClientSession, ref: ImageRef, credential: Credential | None
    ) -> None:
        self.session = session
        self.ref = ref
        self.credential = credential
        self.base = base_url(ref.registry)
        self.authorization: str | None = None

    async def _get(self, path: str, accept: str | None = None) -> tuple[bytes, str]:
        headers = {"Accept": accept} if accept else {}
        for _ in range(2):
            if self.authorization:
                headers["Authorization"] = self.authorization
            url = f"{self.base}/{self.ref.path}/{path}"
            async with self.session.get(url, headers=headers) as r:
                if r.status == 401 and self.authorization is None:
                    await self._authorize(r.headers.get("WWW-Authenticate", ""))
                    continue
                if r.status != 200:
                    raise RegistryError(f"{self.ref.registry} answered {r.status} for {path}")
                body = await r.content.read(MAX_DOCUMENT + 1)
                if len(body) > MAX_DOCUMENT:
                    raise RegistryError(f"{self.ref.registry}: {path} is too large")
                return body, r.headers.get("Content-Type", "").split(";")[0].strip()
        raise RegistryError(f"{self.ref.registry} refused the credentials for {self.ref.path}")

    async def _authorize(self, header: str) -> None:
        challenge = parse_challenge(header)
        if challenge is None or challenge.scheme not in ("bearer", "basic"):
            raise RegistryError(f"{self.ref.registry} asks for an unknown authentication")
        if challenge.scheme == "basic":
            if self.credential is None:
                raise RegistryError(f"{self.ref.registry} needs credentials the job has not")
            self.authorization = _basic(self.credential)
            return
        if "realm" not in challenge.params:
            raise RegistryError(f"{self.ref.registry}: its token challenge names no realm")
        headers = {}
        if self.credential is not None and self.credential.identity_token is None:
            headers["Authorization"] = _basic(self.credential)
        url = token_url(challenge, self.ref.path)
        if self.credential is not None and self.credential.identity_token is not None:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": self.credential.identity_token,
                "service": challenge.params.get("service", ""),
                "scope": f"repository:{self.ref.path}:pull",
                "client_id": "cijob-operator",
            }
            request = self.session.post(challenge.params["realm"], data=form)
        else:
            request = self.session.get(url, headers=headers)
        async with request as r:
            if r.status != 200:
                raise RegistryError(f"{self.ref.registry}: its token service answered {r.status}")
            data = json.loads(await r.content.read(MAX_DOCUMENT))
        token = data.get("token") or data.get("access_token")
        if not token:
            raise RegistryError(f"{self.ref.registry}: its token service gave no token")
        self.authorization = f"Bearer {token}"

    async def manifest_digest(self) -> tuple[str, dict[str, Any]]:
        """(digest, manifest) of the image's linux/amd64 manifest."""
        reference = self.ref.digest or self.ref.tag or "latest"
        body, media = await self._get(f"manifests/{reference}", ACCEPT)
        doc = json.loads(body)
        if media in INDEX_TYPES or doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
            digest = pick_manifest(doc)
            if digest is None:
                raise RegistryError(f"{self.ref.original} has no linux/amd64 image")
            body, _ = await self._get(f"manifests/{digest}", ", ".join(MANIFEST_TYPES))
            return digest, json.loads(body)
        return "sha256:" + hashlib.sha256(body).hexdigest(), doc

    async def config(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        digest = (manifest.get("config") or {}).get("digest")
        if not digest:
            raise RegistryError(f"{self.ref.original}: its manifest names no config")
        body, _ = await self._get(f"blobs/{digest}")
        config: dict[str, Any] = json.loads(body)
        return config
