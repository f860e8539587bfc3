"""Image references, parsed and normalised as Docker's distribution code does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from docker_image import digest as docker_digest
from docker_image import reference as docker_reference

DOCKER_HUB = "docker.io"

# A DNS-1123 subdomain, the rule Kubernetes applies to hostAliases host names.
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class ImageRef:
    """One parsed image reference; `registry` keeps the port (`host:5000`)."""

    original: str
    registry: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.path}"

    @property
    def normalized(self) -> str:
        """The fully qualified reference: `ruby` is `docker.io/library/ruby:latest`."""
        tag = self.tag or (None if self.digest else "latest")
        return self.name + (f":{tag}" if tag else "") + (f"@{self.digest}" if self.digest else "")


class InvalidImageReference(ValueError):
    """The string is not an image reference Docker would accept."""


def parse_image(ref: str) -> ImageRef:
    """Parses `ref` the way `docker pull` does (ParseNormalizedNamed).

    Raises InvalidImageReference with the distribution library's reason.
    """
    try:
        parsed = docker_reference.Reference.parse_normalized_named(ref)
    except (docker_reference.InvalidReference, docker_digest.InvalidDigest) as exc:
        raise InvalidImageReference(f"invalid image reference {ref!r}: {exc}") from None
    return ImageRef(
        original=ref,
        registry=parsed.domain(),
        path=parsed.path(),
        tag=parsed["tag"],
        digest=parsed["digest"],
    )


def is_dns1123_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


def is_dns1123_subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(_DNS1123_SUBDOMAIN.match(name))


def derived_hostnames(image: str) -> list[str]:
    """The host names GitLab derives from a service image, keeping only valid DNS names.

    Drop the digest, the tag and the registry port, then `/` becomes `-`
    (`registry.example.com:5000/my/image:v1` gives `registry.example.com-my-image`). GitLab
    also offers a `__` form, which is never a valid DNS name, so it is left out.
    """
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name = name[:colon]
    first, sep, rest = name.partition("/")
    if sep and ":" in first:
        name = first.split(":", 1)[0] + "/" + rest
    candidate = name.replace("/", "-").lower()
    return [candidate] if is_dns1123_subdomain(candidate) else []
