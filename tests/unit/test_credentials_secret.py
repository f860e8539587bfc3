"""The dockerconfigjson pull Secret: content the kubelet matches, ownership, name."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from cijob.credentials.authconfig import Credential, parse_auth_config
from cijob.credentials.secret import (
    dockerconfigjson,
    get_pull_secret,
    identity_token_registries,
    pull_secret_name,
)

PASSWORD = "pa:ss-S3CRET"
OWNER = {
    "apiVersion": "cijob.dev/v1alpha1",
    "kind": "CiJob",
    "name": "rspec",
    "uid": "6f0c3f4e-1b7a-4c59-9a55-0d4c8e3b2a11",
}
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_entry_has_username_password_and_auth() -> None:
    text = dockerconfigjson({"registry.example.com:5000": Credential("robot", PASSWORD)})
    assert json.loads(text) == {
        "auths": {
            "registry.example.com:5000": {
                "auth": b64(f"robot:{PASSWORD}"),
                "password": PASSWORD,
                "username": "robot",
            }
        }
    }


def test_output_is_compact_sorted_and_deterministic() -> None:
    creds = {"z.example.com": Credential("z", "1"), "a.example.com": Credential("a", "2")}
    text = dockerconfigjson(creds)
    assert text == dockerconfigjson(dict(reversed(list(creds.items()))))
    assert text.index("a.example.com") < text.index("z.example.com")
    assert " " not in text


def test_round_trip_through_our_own_parser() -> None:
    creds = {
        "registry.example.com:5000": Credential("robot", PASSWORD),
        "quay.io": Credential("q", "other"),
    }
    parsed = parse_auth_config(dockerconfigjson(creds))
    assert dict(parsed.auths) == creds


def test_docker_hub_is_written_under_both_keys_the_kubelet_knows() -> None:
    # docker.io matches `docker.io/library/ruby` directly; the index address is the kubelet's
    # fallback for every Hub image and what Docker itself writes.
    text = dockerconfigjson({"docker.io": Credential("hub", PASSWORD)})
    auths = json.loads(text)["auths"]
    assert set(auths) == {"docker.io", "https://index.docker.io/v1/"}
    assert auths["docker.io"] == auths["https://index.docker.io/v1/"]


def test_hub_alias_spelled_by_the_image_is_kept() -> None:
    text = dockerconfigjson({"registry-1.docker.io": Credential("hub", PASSWORD)})
    assert set(json.loads(text)["auths"]) == {
        "registry-1.docker.io",
        "https://index.docker.io/v1/",
    }


def test_identity_token_entry() -> None:
    creds = {"docker.io": Credential("", "", identity_token="T0KEN")}
    auths = json.loads(dockerconfigjson(creds))["auths"]
    assert auths["docker.io"] == {"identitytoken": "T0KEN"}
    assert identity_token_registries(creds) == ["docker.io"]
    both = {"r.example.com": Credential("user", "", identity_token="T0KEN")}
    assert json.loads(dockerconfigjson(both))["auths"]["r.example.com"] == {
        "auth": b64("user:"),
        "identitytoken": "T0KEN",
        "password": "",
        "username": "user",
    }
    assert identity_token_registries(both) == []


def test_empty() -> None:
    assert dockerconfigjson({}) == '{"auths":{}}'


def secret(creds: dict[str, Credential] | None = None) -> dict[str, Any]:
    return get_pull_secret(
        name="rspec-registry-credentials",
        namespace="team-a",
        owner=OWNER,
        creds=creds
        if creds is not None
        else {
            "registry.example.com:5000": Credential("robot", PASSWORD),
            "docker.io": Credential("hub", PASSWORD),
        },
        labels={"cijob.dev/job": "rspec"},
    )


def test_pull_secret_manifest() -> None:
    manifest = secret()
    assert manifest["apiVersion"] == "v1"
    assert manifest["kind"] == "Secret"
    assert manifest["type"] == "kubernetes.io/dockerconfigjson"
    assert manifest["metadata"] == {
        "name": "rspec-registry-credentials",
        "namespace": "team-a",
        "labels": {"cijob.dev/job": "rspec"},
        "annotations": {"cijob.dev/registries": "docker.io,registry.example.com:5000"},
        "ownerReferences": [{**OWNER, "controller": True, "blockOwnerDeletion": True}],
    }
    payload = base64.b64decode(manifest["data"][".dockerconfigjson"]).decode()
    assert payload == dockerconfigjson(
        {
            "registry.example.com:5000": Credential("robot", PASSWORD),
            "docker.io": Credential("hub", PASSWORD),
        }
    )


def test_credentials_appear_only_base64_encoded_in_data() -> None:
    manifest = secret()
    visible = json.dumps({key: value for key, value in manifest.items() if key != "data"})
    assert PASSWORD not in visible
    assert PASSWORD not in json.dumps(manifest)


def test_owner_with_extra_fields_and_missing_fields() -> None:
    manifest = get_pull_secret(
        name="n",
        namespace="ns",
        owner={**OWNER, "metadata": {"x": "y"}},
        creds={},
        labels={},
    )
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == OWNER["uid"]
    assert manifest["metadata"]["annotations"] == {"cijob.dev/registries": ""}
    incomplete = {key: value for key, value in OWNER.items() if key != "uid"}
    with pytest.raises(ValueError, match="owner lacks uid"):
        get_pull_secret(name="n", namespace="ns", owner=incomplete, creds={}, labels={})


def test_labels_are_copied() -> None:
    labels = {"a": "b"}
    manifest = get_pull_secret(name="n", namespace="ns", owner=OWNER, creds={}, labels=labels)
    manifest["metadata"]["labels"]["c"] = "d"
    assert labels == {"a": "b"}


def test_pull_secret_name_short() -> None:
    assert pull_secret_name("rspec") == "rspec-registry-credentials"
    exact = "a" * (253 - len("-registry-credentials"))
    assert pull_secret_name(exact) == exact + "-registry-credentials"


@pytest.mark.parametrize(
    "job_name",
    [
        "a" * 253,
        "a" * 232,
        "x." * 126 + "y",
        "a" * 220 + "-" * 12 + "b" * 21,
        "team-a.nightly." + "long-name-" * 23 + "end",
    ],
)
def test_pull_secret_name_long(job_name: str) -> None:
    name = pull_secret_name(job_name)
    assert len(name) <= 253
    assert name.endswith("-registry-credentials")
    assert DNS1123_SUBDOMAIN.fullmatch(name)
    assert pull_secret_name(job_name) == name


def test_long_names_sharing_a_prefix_stay_distinct() -> None:
    first, second = "a" * 240 + "-one", "a" * 240 + "-two"
    assert pull_secret_name(first) != pull_secret_name(second)
