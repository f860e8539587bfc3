"""The simulated node's image references: normalised and digested as containerd reports them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testground import images


@pytest.mark.parametrize(
    ("image", "familiar", "name"),
    [
        ("ruby:3.3", "docker.io/library/ruby:3.3", "docker.io/library/ruby"),
        ("ruby", "docker.io/library/ruby:latest", "docker.io/library/ruby"),
        ("tutum/wordpress", "docker.io/tutum/wordpress:latest", "docker.io/tutum/wordpress"),
        ("index.docker.io/library/ruby:3", "docker.io/library/ruby:3", "docker.io/library/ruby"),
        (
            "registry.example.com:5000/my/image:v1",
            "registry.example.com:5000/my/image:v1",
            "registry.example.com:5000/my/image",
        ),
        ("localhost/app", "localhost/app:latest", "localhost/app"),
    ],
)
def test_kubesim_normalises_image_references(image: str, familiar: str, name: str) -> None:
    ref = images.parse(image)
    assert (ref.familiar, ref.name) == (familiar, name)


def test_kubesim_image_id_uses_a_pinned_digest() -> None:
    digest = "sha256:" + "ab" * 32
    ref = images.parse(f"ruby:3.3@{digest}")
    assert ref.familiar == "docker.io/library/ruby:3.3"
    assert ref.image_id == f"docker.io/library/ruby@{digest}"
    assert images.parse(f"ruby@{digest}").familiar == f"docker.io/library/ruby@{digest}"


def test_kubesim_fake_digest_is_stable_and_per_reference() -> None:
    a, b = images.parse("ruby:3.3").image_id, images.parse("docker.io/library/ruby:3.3").image_id
    assert a == b
    assert a.startswith("docker.io/library/ruby@sha256:") and len(a.split(":")[-1]) == 64
    assert images.parse("ruby").image_id == images.parse("ruby:latest").image_id
    assert images.parse("ruby:3.2").image_id != a


@pytest.mark.parametrize(
    ("image", "error"),
    [
        ("Ruby:3.3", "invalid reference format: repository name (library/Ruby) must be lowercase"),
        ("ruby:", "invalid reference format"),
        ("bad image", "invalid reference format"),
        ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
    ],
)
def test_kubesim_rejects_invalid_references_like_the_kubelet(image: str, error: str) -> None:
    with pytest.raises(
        images.InvalidReference, match=error.replace("(", r"\(").replace(")", r"\)")
    ):
        images.parse(image)
    message = images.invalid_image_message(image)
    assert message is not None
    assert message.startswith(f'Failed to apply default image tag "{image}": couldn\'t parse')


def test_kubesim_valid_images_have_no_invalid_name_message() -> None:
    assert images.invalid_image_message("ruby:3.3") is None
    assert images.invalid_image_message("ruby:3.3", force=True) is not None


@given(
    st.from_regex(r"[a-z0-9]{1,10}(/[a-z0-9]{1,10}){0,2}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
)
def test_kubesim_parse_round_trips_its_own_output(path: str, tag: str) -> None:
    ref = images.parse(f"{path}:{tag}")
    again = images.parse(ref.familiar)
    assert again == ref
    assert ref.familiar.endswith(f":{tag}")
