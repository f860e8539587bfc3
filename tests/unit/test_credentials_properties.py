"""Property tests: key spellings normalise alike; image registries pick the right entry."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from cijob.credentials.authconfig import Credential, parse_auth_config, registry_key
from cijob.credentials.matching import registries_of, select_credentials

HUB_ALIASES = ["docker.io", "index.docker.io", "registry-1.docker.io"]

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
dotted_host = (
    st.lists(label, min_size=2, max_size=4)
    .map(".".join)
    .filter(lambda host: host not in HUB_ALIASES)
)
port = st.integers(min_value=1, max_value=65535)


@st.composite
def registries(draw: st.DrawFn) -> str:
    """A registry as an image reference names it: a dotted host or localhost, maybe a port."""
    host = draw(st.one_of(dotted_host, st.just("localhost")))
    if draw(st.booleans()):
        return f"{host}:{draw(port)}"
    return host


@st.composite
def spellings(draw: st.DrawFn, registry: str) -> str:
    """One of the ways a config file may name `registry`: scheme, case, trailing path."""
    host, colon, port_part = registry.partition(":")
    if host == "docker.io" and not colon:
        host = draw(st.sampled_from(HUB_ALIASES))
    upper = draw(st.lists(st.booleans(), min_size=len(host), max_size=len(host)))
    host = "".join(c.upper() if up else c for c, up in zip(host, upper, strict=True))
    scheme = draw(st.sampled_from(["", "http://", "https://", "HTTPS://", "Https://"]))
    path = draw(st.sampled_from(["", "/", "/v1/", "/v2/", "/v2", "/some/path", "/v1/x"]))
    return f"{scheme}{host}{colon}{port_part}{path}"


path_component = st.from_regex(r"[a-z0-9]{1,8}([._-][a-z0-9]{1,8})?", fullmatch=True)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
digests = st.from_regex(r"[0-9a-f]{64}", fullmatch=True).map(lambda hex_: f"sha256:{hex_}")


@st.composite
def references(draw: st.DrawFn) -> tuple[str, str]:
    """(image reference, the registry it names) built from parts."""
    registry = draw(st.one_of(st.none(), registries()))
    path = draw(st.lists(path_component, min_size=1, max_size=3))
    if registry is None:
        # Docker reads a first component with a '.' (or `localhost`) as a registry host.
        path[0] = path[0].replace(".", "-")
        if path[0] == "localhost":
            path[0] = "library"
    name = "/".join(path if registry is None else [registry, *path])
    tag = draw(st.one_of(st.none(), tags))
    digest = draw(st.one_of(st.none(), digests))
    reference = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return reference, registry or "docker.io"


def other_port(registry: str, new_port: int) -> str:
    host, colon, old = registry.partition(":")
    if colon and str(new_port) == old:
        return host  # same port drawn: drop it instead, still a different registry
    return f"{host}:{new_port}"


def auth(user: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:pw".encode()).decode()}


def no_helpers(helper: str, registry: str) -> Credential | None:
    raise AssertionError("no helper configured")


@given(st.data())
def test_spellings_normalise_to_the_plain_form(data: st.DataObject) -> None:
    registry = data.draw(st.one_of(registries(), st.just("docker.io")))
    spelling = data.draw(spellings(registry))
    assert registry_key(spelling) == registry_key(registry) == registry


@given(st.sampled_from([*HUB_ALIASES, "https://index.docker.io/v1/", "Index.Docker.IO/v2/"]))
def test_hub_aliases(alias: str) -> None:
    assert registry_key(alias) == "docker.io"


@given(registries(), port)
def test_a_different_port_is_a_different_key(registry: str, new_port: int) -> None:
    assert registry_key(other_port(registry, new_port)) != registry_key(registry)


@given(references())
def test_registries_of_gives_the_host_and_port_of_the_reference(
    case: tuple[str, str],
) -> None:
    reference, registry = case
    assert registries_of([reference]) == [registry]


@given(st.data())
def test_select_picks_any_spelling_and_never_another_port(data: st.DataObject) -> None:
    reference, registry = data.draw(references())
    spelling = data.draw(spellings(registry))
    decoy = other_port(registry, data.draw(port))
    entries = {decoy: auth("decoy"), spelling: auth("right")}
    if data.draw(st.booleans()):
        entries = dict(reversed(entries.items()))
    config = parse_auth_config(json.dumps({"auths": entries}))
    used = registries_of([reference])
    assert select_credentials(config, used, no_helpers) == {registry: Credential("right", "pw")}

    only_decoy = parse_auth_config(json.dumps({"auths": {decoy: auth("decoy")}}))
    assert select_credentials(only_decoy, used, no_helpers) == {}


@given(st.data())
def test_helpers_are_matched_the_same_way(data: st.DataObject) -> None:
    reference, registry = data.draw(references())
    spelling = data.draw(spellings(registry))
    decoy = other_port(registry, data.draw(port))
    config = parse_auth_config(json.dumps({"credHelpers": {spelling: "right", decoy: "decoy"}}))
    calls: list[tuple[str, str]] = []

    def run(helper: str, key: str) -> Credential | None:
        calls.append((helper, key))
        return Credential(helper, "pw")

    selected = select_credentials(config, registries_of([reference]), run)
    assert selected == {registry: Credential("right", "pw")}
    assert calls == [("right", registry)]
