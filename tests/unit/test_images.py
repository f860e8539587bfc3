"""Image references: parsing and normalising as Docker does, and GitLab's derived host names."""

from __future__ import annotations

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from cijob.api import rules
from cijob.images import (
    ImageRef,
    InvalidImageReference,
    derived_hostnames,
    is_dns1123_label,
    is_dns1123_subdomain,
    parse_image,
)

SEED_DIGEST = "sha256:d1dbaf9665fe8b2175198e49438092fdbcf4d8934200942b94425301b17853c7"
HEX64 = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("ref", "registry", "path", "tag", "digest", "normalized"),
    [
        ("ruby", "docker.io", "library/ruby", None, None, "docker.io/library/ruby:latest"),
        ("ruby:2.6", "docker.io", "library/ruby", "2.6", None, "docker.io/library/ruby:2.6"),
        (
            "tutum/wordpress",
            "docker.io",
            "tutum/wordpress",
            None,
            None,
            "docker.io/tutum/wordpress:latest",
        ),
        (
            "registry.example.com:5000/namespace/image:tag",
            "registry.example.com:5000",
            "namespace/image",
            "tag",
            None,
            "registry.example.com:5000/namespace/image:tag",
        ),
        (
            f"ruby:2.6.8@{SEED_DIGEST}",
            "docker.io",
            "library/ruby",
            "2.6.8",
            SEED_DIGEST,
            f"docker.io/library/ruby:2.6.8@{SEED_DIGEST}",
        ),
        (
            f"ruby@{SEED_DIGEST}",
            "docker.io",
            "library/ruby",
            None,
            SEED_DIGEST,
            f"docker.io/library/ruby@{SEED_DIGEST}",
        ),
        (
            f"registry.example.com/my/image:v1@sha256:{HEX64}",
            "registry.example.com",
            "my/image",
            "v1",
            f"sha256:{HEX64}",
            f"registry.example.com/my/image:v1@sha256:{HEX64}",
        ),
        (
            "localhost:5000/foo",
            "localhost:5000",
            "foo",
            None,
            None,
            "localhost:5000/foo:latest",
        ),
        ("localhost/foo", "localhost", "foo", None, None, "localhost/foo:latest"),
        (
            "docker.io/ruby",
            "docker.io",
            "library/ruby",
            None,
            None,
            "docker.io/library/ruby:latest",
        ),
        (
            "docker.io/library/ruby:2.6",
            "docker.io",
            "library/ruby",
            "2.6",
            None,
            "docker.io/library/ruby:2.6",
        ),
        # The legacy Docker Hub host is the same registry as docker.io.
        (
            "index.docker.io/ruby",
            "docker.io",
            "library/ruby",
            None,
            None,
            "docker.io/library/ruby:latest",
        ),
        (
            "index.docker.io/library/ruby:2.6",
            "docker.io",
            "library/ruby",
            "2.6",
            None,
            "docker.io/library/ruby:2.6",
        ),
        (
            "docker:dind",
            "docker.io",
            "library/docker",
            "dind",
            None,
            "docker.io/library/docker:dind",
        ),
    ],
)
def test_parse_and_normalise(
    ref: str, registry: str, path: str, tag: str | None, digest: str | None, normalized: str
) -> None:
    parsed = parse_image(ref)
    assert parsed == ImageRef(original=ref, registry=registry, path=path, tag=tag, digest=digest)
    assert parsed.name == f"{registry}/{path}"
    assert parsed.normalized == normalized


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "Ruby",
        "ruby/Rails:1",
        "library/RUBY",
        "registry.example.com/Group/image",
        "ruby@sha256:abc",
        f"ruby@sha256:{HEX64.upper()}",
        f"ruby@md5:{HEX64}",
        "ruby@",
        "ruby:",
        "ruby:2.6:3",
        ":tag",
        "a b",
        "ruby/",
        "/ruby",
        "ruby:-tag",
        "x" * 300,
    ],
)
def test_invalid_references_are_rejected(ref: str) -> None:
    with pytest.raises(InvalidImageReference) as info:
        parse_image(ref)
    assert repr(ref) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_invalid_reference_message_gives_the_reason() -> None:
    with pytest.raises(InvalidImageReference, match="lowercase"):
        parse_image("Ruby:2.6")


@pytest.mark.parametrize(
    ("image", "hostnames"),
    [
        # GitLab's own examples.
        ("registry.example.com/my/image:v1", ["registry.example.com-my-image"]),
        ("tutum/wordpress", ["tutum-wordpress"]),
        ("postgres:11.7", ["postgres"]),
        ("docker:dind", ["docker"]),
        ("mysql:latest", ["mysql"]),
        # The registry port goes.
        ("registry.example.com:5000/my/image:v1", ["registry.example.com-my-image"]),
        ("registry.example.com:5000/my/image", ["registry.example.com-my-image"]),
        ("localhost:5000/foo:1", ["localhost-foo"]),
        # The digest goes, with or without a tag.
        (f"postgres@sha256:{HEX64}", ["postgres"]),
        (f"postgres:11.7@sha256:{HEX64}", ["postgres"]),
        (
            f"registry.example.com:5000/my/image:v1@sha256:{HEX64}",
            ["registry.example.com-my-image"],
        ),
        # Not a DNS name (underscore): nothing derived.
        ("my_image:1", []),
    ],
)
def test_derived_hostnames(image: str, hostnames: list[str]) -> None:
    assert derived_hostnames(image) == hostnames


def test_derived_hostnames_never_include_the_double_underscore_form() -> None:
    for image in ["registry.example.com/my/image:v1", "tutum/wordpress", "a/b/c"]:
        for host in derived_hostnames(image):
            assert "__" not in host
            assert is_dns1123_subdomain(host)


def test_dns1123_helpers() -> None:
    assert is_dns1123_label("db")
    assert is_dns1123_label("a" * 63)
    assert not is_dns1123_label("a" * 64)
    assert not is_dns1123_label("Db")
    assert not is_dns1123_label("-db")
    assert not is_dns1123_label("db.example")
    assert is_dns1123_subdomain("db.example")
    assert not is_dns1123_subdomain("db..example")
    assert not is_dns1123_subdomain("db_x")


# -- properties ------------------------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
_domain = st.one_of(
    st.lists(_label, min_size=2, max_size=3).map(".".join),
    st.just("localhost"),
)
_port = st.integers(min_value=1, max_value=65535).map(lambda p: f":{p}")
_component = st.from_regex(r"[a-z0-9]{1,6}((\.|_|__|-{1,2})[a-z0-9]{1,6}){0,2}", fullmatch=True)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}", fullmatch=True)
_digest = st.from_regex(r"[0-9a-f]{64}", fullmatch=True).map(lambda h: f"sha256:{h}")


@st.composite
def references(draw: st.DrawFn) -> str:
    """A valid reference in any of the forms: [domain[:port]/]path[:tag][@digest]."""
    components = draw(st.lists(_component, min_size=1, max_size=3))
    if draw(st.booleans()):
        domain = draw(_domain) + draw(st.one_of(st.just(""), _port))
        components.insert(0, domain)
    elif len(components) > 1:
        # A first component with a dot names a registry (`splitDockerDomain`); keep it a path.
        components[0] = components[0].replace(".", "-")
    ref = "/".join(components)
    if draw(st.booleans()):
        ref += ":" + draw(_tag)
    if draw(st.booleans()):
        ref += "@" + draw(_digest)
    return ref


@settings(max_examples=300, deadline=None)
@given(references())
def test_valid_references_parse_and_normalise_to_a_fixed_point(ref: str) -> None:
    # What the API server's CEL rule lets through (the same grammar, run by `regex`, which
    # knows the POSIX class in it) is what the operator parses.
    assert regex.match(rules.IMAGE_REFERENCE, ref)
    parsed = parse_image(ref)
    assert parsed.original == ref
    again = parse_image(parsed.normalized)
    assert again.normalized == parsed.normalized
    assert (again.registry, again.path, again.digest) == (
        parsed.registry,
        parsed.path,
        parsed.digest,
    )
    # No tag means `latest`, unless the reference is pinned by digest alone.
    assert again.tag == (parsed.tag or (None if parsed.digest else "latest"))


@settings(max_examples=200, deadline=None)
@given(references())
def test_derived_hostnames_are_valid_dns_names(ref: str) -> None:
    for host in derived_hostnames(ref):
        assert is_dns1123_subdomain(host)
        assert "@" not in host and ":" not in host and "/" not in host
