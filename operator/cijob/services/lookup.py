"""The ports each service image exposes, read from its registry before the pod is rendered
(thin I/O), cached by manifest digest."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from cijob.config import OperatorConfig
from cijob.credentials.authconfig import Credential
from cijob.images import parse_image
from cijob.job import Job
from cijob.render.pod import get_pod
from cijob.services import probes, registry

log = logging.getLogger("cijob")

Event = tuple[str, str, str]
# One registry read (all its requests) gives up after this long: the pod waits for it.
TIMEOUT_SECONDS = 10.0
# A registry that could not be read is not asked again for this image for so long.
FAILURE_TTL_SECONDS = 300.0
CACHE_SIZE = 1024


def unprobed_images(job: Job, config: OperatorConfig) -> list[str]:
    """The service images whose port must come from their image (no HEALTHCHECK_TCP_PORT)."""
    pod = get_pod(job, 1, config)
    out = []
    for c in pod["spec"].get("initContainers") or []:
        if c.get("restartPolicy") != "Always":
            continue
        names = {e["name"] for e in c.get("env") or []}
        if probes.HEALTHCHECK_TCP_PORT not in names and c["image"] not in out:
            out.append(c["image"])
    return out


@dataclass
class PortLookup:
    """Exposed TCP ports by image, from the registry; `by_digest` is the cache."""

    by_digest: dict[str, list[int]] = field(default_factory=dict)
    failed: dict[str, tuple[float, str]] = field(default_factory=dict)
    _session: aiohttp.ClientSession | None = None

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS), trust_env=True
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def ports(self, image: str, credential: Credential | None) -> list[int]:
        """The image's exposed TCP ports; raises registry.RegistryError when unreadable."""
        ref = parse_image(image)
        if ref.digest and ref.digest in self.by_digest:
            return self.by_digest[ref.digest]
        failed = self.failed.get(image)
        if failed is not None and time.monotonic() - failed[0] < FAILURE_TTL_SECONDS:
            raise registry.RegistryError(failed[1])
        client = registry.Client(self._client_session(), ref, credential)
        try:
            digest, manifest = await client.manifest_digest()
            if digest not in self.by_digest:
                config = await client.config(manifest)
                if len(self.by_digest) >= CACHE_SIZE:
                    self.by_digest.pop(next(iter(self.by_digest)))
                self.by_digest[digest] = probes.exposed_tcp_ports(config)
        except registry.RegistryError as exc:
            self.failed[image] = (time.monotonic(), str(exc))
            raise
        except (TimeoutError, aiohttp.ClientError, ValueError, KeyError) as exc:
            why = f"cannot read {ref.registry}: {type(exc).__name__}: {exc}".rstrip(": ")
            self.failed[image] = (time.monotonic(), why)
            raise registry.RegistryError(why) from None
        self.failed.pop(image, None)
        return self.by_digest[digest]

    async def resolve(
        self, job: Job, config: OperatorConfig, creds: Mapping[str, Credential]
    ) -> tuple[dict[str, list[int]], list[Event]]:
        """(ports by service image, Normal events for images whose registry could not be
        read: those services get no probe, and the job is not failed for it)."""
        out: dict[str, list[int]] = {}
        events: list[Event] = []
        for image in unprobed_images(job, config):
            try:
                out[image] = await self.ports(image, creds.get(parse_image(image).registry))
            except registry.RegistryError as exc:
                log.info("no startup probe for service %s of %s/%s: %s", image,
                         job.namespace, job.name, exc)  # fmt: skip
                events.append(
                    (
                        "Normal",
                        "ServicePortsUnknown",
                        f"service {image}: its exposed ports could not be read ({exc}); it gets "
                        f"no startup probe (set {probes.HEALTHCHECK_TCP_PORT} to wait for it)",
                    )
                )
        return out, events
