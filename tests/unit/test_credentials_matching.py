"""Selecting a job's credentials: host:port matching, least privilege, helper precedence."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from cijob.credentials.authconfig import AuthConfig, Credential, parse_auth_config
from cijob.credentials.matching import registries_of, select_credentials
from cijob.errors import CredentialHelperFailed


def auth(user: str, password: str = "S3CRET") -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def parse(document: dict[str, Any]) -> AuthConfig:
    return parse_auth_config(json.dumps(document))


class FakeHelpers:
    """Stands in for run_credential_helper: answers from a table and records each call."""

    def __init__(self, answers: dict[tuple[str, str], Credential | None] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, str]] = []

    def __call__(self, helper: str, registry: str) -> Credential | None:
        self.calls.append((helper, registry))
        return self.answers.get((helper, registry))


def no_helpers(helper: str, registry: str) -> Credential | None:
    raise AssertionError(f"no helper should run, ran {helper} for {registry}")


# --- registries_of -------------------------------------------------------------------------


def test_registries_of_in_first_seen_order() -> None:
    images = [
        "ruby:2.6",
        "postgres:11.7",
        "registry.example.com:5000/namespace/image:tag",
        "index.docker.io/library/redis",
        "registry.example.com/other/image@sha256:" + "a" * 64,
        "registry.example.com:5000/another",
        "localhost:5000/x",
    ]
    assert registries_of(images) == [
        "docker.io",
        "registry.example.com:5000",
        "registry.example.com",
        "localhost:5000",
    ]


def test_registries_of_keeps_the_spelling_of_the_reference() -> None:
    assert registries_of(["Registry.Example.com/a/b"]) == ["Registry.Example.com"]
    assert registries_of(["registry-1.docker.io/library/ruby"]) == ["registry-1.docker.io"]


def test_registries_of_nothing() -> None:
    assert registries_of([]) == []


# --- static auths --------------------------------------------------------------------------


def test_least_privilege_only_the_registries_the_job_uses() -> None:
    config = parse(
        {
            "auths": {
                "registry.example.com:5000": auth("five-thousand"),
                "registry.example.com": auth("plain"),
                "https://index.docker.io/v1/": auth("hub"),
                "quay.io": auth("quay"),
                "ghcr.io": auth("ghcr"),
            }
        }
    )
    registries = registries_of(["registry.example.com:5000/namespace/image:tag"])
    selected = select_credentials(config, registries, no_helpers)
    assert selected == {"registry.example.com:5000": Credential("five-thousand", "S3CRET")}


def test_port_must_match_exactly() -> None:
    config = parse({"auths": {"registry.example.com": auth("plain")}})
    assert select_credentials(config, ["registry.example.com:5000"], no_helpers) == {}
    config = parse({"auths": {"registry.example.com:5000": auth("port")}})
    assert select_credentials(config, ["registry.example.com"], no_helpers) == {}
    assert select_credentials(config, ["registry.example.com:5001"], no_helpers) == {}


def test_hub_aliases_are_one_registry() -> None:
    for key in ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"):
        config = parse({"auths": {key: auth("hub")}})
        registries = registries_of(["ruby:2.6", "docker.io/library/postgres"])
        assert select_credentials(config, registries, no_helpers) == {
            "docker.io": Credential("hub", "S3CRET")
        }


def test_result_keyed_by_the_registry_as_given() -> None:
    config = parse({"auths": {"registry.example.com": auth("plain")}})
    selected = select_credentials(config, ["Registry.Example.com"], no_helpers)
    assert selected == {"Registry.Example.com": Credential("plain", "S3CRET")}


def test_registry_without_credentials_is_left_out() -> None:
    config = parse({"auths": {"registry.example.com": auth("plain")}})
    selected = select_credentials(config, ["docker.io", "registry.example.com"], no_helpers)
    assert list(selected) == ["registry.example.com"]


# --- helpers and stores --------------------------------------------------------------------

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def test_cred_helper_wins_over_auths_and_store() -> None:
    config = parse(
        {"auths": {ECR: auth("static")}, "credsStore": "pass", "credHelpers": {ECR: "ecr-login"}}
    )
    helpers = FakeHelpers({("ecr-login", ECR): Credential("AWS", "ecr-token")})
    selected = select_credentials(config, [ECR], helpers)
    assert selected == {ECR: Credential("AWS", "ecr-token")}
    assert helpers.calls == [("ecr-login", ECR)]


def test_cred_helper_not_found_is_final() -> None:
    # Docker's getConfiguredCredentialStore: a registry's own helper decides alone.
    config = parse(
        {"auths": {ECR: auth("static")}, "credsStore": "pass", "credHelpers": {ECR: "ecr-login"}}
    )
    helpers = FakeHelpers()
    assert select_credentials(config, [ECR], helpers) == {}
    assert helpers.calls == [("ecr-login", ECR)]


def test_empty_cred_helper_skips_the_store() -> None:
    config = parse({"auths": {ECR: auth("static")}, "credsStore": "pass", "credHelpers": {ECR: ""}})
    helpers = FakeHelpers({("pass", ECR): Credential("store", "S3CRET")})
    assert select_credentials(config, [ECR], helpers) == {ECR: Credential("static", "S3CRET")}
    assert helpers.calls == []


def test_creds_store_applies_to_registries_without_a_helper() -> None:
    config = parse({"credsStore": "osxkeychain", "credHelpers": {ECR: "ecr-login"}})
    helpers = FakeHelpers(
        {
            ("osxkeychain", "registry.example.com:5000"): Credential("keychain", "S3CRET"),
            ("ecr-login", ECR): Credential("AWS", "ecr-token"),
        }
    )
    selected = select_credentials(config, ["registry.example.com:5000", ECR], helpers)
    assert selected == {
        "registry.example.com:5000": Credential("keychain", "S3CRET"),
        ECR: Credential("AWS", "ecr-token"),
    }
    assert helpers.calls == [("osxkeychain", "registry.example.com:5000"), ("ecr-login", ECR)]


def test_creds_store_beats_a_static_entry() -> None:
    config = parse({"credsStore": "pass", "auths": {"r.example.com": auth("static")}})
    helpers = FakeHelpers({("pass", "r.example.com"): Credential("store", "S3CRET")})
    selected = select_credentials(config, ["r.example.com"], helpers)
    assert selected == {"r.example.com": Credential("store", "S3CRET")}


def test_creds_store_without_an_entry_falls_back_to_auths_then_nothing() -> None:
    config = parse({"credsStore": "pass", "auths": {"r.example.com": auth("static")}})
    helpers = FakeHelpers()
    selected = select_credentials(config, ["r.example.com", "other.example.com"], helpers)
    assert selected == {"r.example.com": Credential("static", "S3CRET")}
    assert helpers.calls == [("pass", "r.example.com"), ("pass", "other.example.com")]


def test_helpers_run_only_for_used_registries_and_once_each() -> None:
    config = parse(
        {
            "credHelpers": {
                ECR: "ecr-login",
                "gcr.io": "gcloud",
                "https://index.docker.io/v1/": "desktop",
            }
        }
    )
    helpers = FakeHelpers({("desktop", "docker.io"): Credential("hub", "S3CRET")})
    registries = ["docker.io", "registry-1.docker.io", "docker.io"]
    selected = select_credentials(config, registries, helpers)
    assert selected == {
        "docker.io": Credential("hub", "S3CRET"),
        "registry-1.docker.io": Credential("hub", "S3CRET"),
    }
    # Normalised key, one call for both spellings, none for gcr.io or ECR.
    assert helpers.calls == [("desktop", "docker.io")]


def test_identity_token_from_a_helper_is_kept() -> None:
    config = parse({"credsStore": "desktop"})
    token = Credential("", "", identity_token="T0KEN")
    helpers = FakeHelpers({("desktop", "docker.io"): token})
    assert select_credentials(config, ["docker.io"], helpers) == {"docker.io": token}


def test_helper_failure_propagates() -> None:
    config = parse({"credHelpers": {ECR: "ecr-login"}})

    def failing(helper: str, registry: str) -> Credential | None:
        raise CredentialHelperFailed(f"docker-credential-{helper} was not found")

    with pytest.raises(CredentialHelperFailed, match="docker-credential-ecr-login"):
        select_credentials(config, [ECR], failing)


def test_failing_helper_of_an_unused_registry_does_not_matter() -> None:
    config = parse({"credHelpers": {ECR: "ecr-login"}, "auths": {"quay.io": auth("quay")}})

    def failing(helper: str, registry: str) -> Credential | None:
        raise CredentialHelperFailed("should not run")

    assert select_credentials(config, ["quay.io"], failing) == {
        "quay.io": Credential("quay", "S3CRET")
    }
