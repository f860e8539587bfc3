"""Image references as a node's runtime sees them: parsed, normalised, with a fake digest."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

# The grammar of github.com/distribution/reference (regexp.go), which the kubelet applies through
# ParseNormalizedNamed before it pulls anything (pkg/util/parsers/parsers.go).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_REFERENCE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")
NAME_TOTAL_LENGTH_MAX = 255
DEFAULT_DOMAIN = "docker.io"
OFFICIAL_REPO_PREFIX = "library/"


class InvalidReference(ValueError):
    """The reference does not parse; str() is the parser's message."""


@dataclass(frozen=True)
class ImageRef:
    """A normalised reference: docker.io/library/ruby, tag 3.3, optional digest."""

    name: str
    tag: str | None
    digest: str | None

    @property
    def familiar(self) -> str:
        """What the runtime reports as the container's image: name:tag, else name@digest."""
        if self.tag is not None:
            return f"{self.name}:{self.tag}"
        if self.digest is not None:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:latest"

    @property
    def image_id(self) -> str:
        """The repo digest the runtime reports as imageID: the pinned one, else a stable fake."""
        digest = self.digest or "sha256:" + hashlib.sha256(self.familiar.encode()).hexdigest()
        return f"{self.name}@{digest}"


def _split_domain(name: str) -> tuple[str, str]:
    # splitDockerDomain: the first component is a registry only if it looks like a host.
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain in ("index.docker.io",):
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(image: str) -> ImageRef:
    """Parses and normalises like ParseNormalizedNamed; raises InvalidReference like it."""
    if _HEX64.match(image):
        raise InvalidReference(
            f"invalid repository name ({image}), cannot specify 64-byte hexadecimal strings"
        )
    # Check lower case on the repository part first, as ParseNormalizedNamed does.
    head = image.split("@", 1)[0]
    last_slash = head.rfind("/")
    colon = head.rfind(":")
    name_part = head[:colon] if colon > last_slash else head
    _, remote = _split_domain(name_part)
    if remote.lower() != remote:
        raise InvalidReference(
            f"invalid reference format: repository name ({remote}) must be lowercase"
        )
    m = _REFERENCE.match(image)
    if m is None:
        raise InvalidReference("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    domain, remainder = _split_domain(name)
    return ImageRef(name=f"{domain}/{remainder}", tag=tag, digest=digest)


def goq(s: str) -> str:
    """Go's %q for the plain strings that appear in kubelet messages."""
    return json.dumps(s, ensure_ascii=False)


def invalid_image_message(image: str, force: bool = False) -> str | None:
    """The kubelet's InvalidImageName message for `image`, or None when the image is valid
    (unless `force`, for a test that declares a valid image invalid)."""
    try:
        parse(image)
    except InvalidReference as e:
        error = str(e)
    else:
        if not force:
            return None
        error = "invalid reference format"
    # pkg/kubelet/images/image_manager.go wraps pkg/util/parsers' error like this.
    return (
        f"Failed to apply default image tag {goq(image)}: "
        f"couldn't parse image name {goq(image)}: {error}"
    )
