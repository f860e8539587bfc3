"""Parsing DOCKER_AUTH_CONFIG: formats, key normalisation, and errors that never leak a secret."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from cijob.credentials.authconfig import (
    AuthConfig,
    Credential,
    parse_auth_config,
    registry_key,
    server_address,
    valid_helper_name,
)
from cijob.errors import InvalidAuthConfig, JobError

USER = "ci-robot"
PASSWORD = "pa:ss:w0rd-S3CRET"  # colons: the password is what follows the first one
TOKEN = "identity-T0KEN-S3CRET"
SECRETS = (PASSWORD, TOKEN, "S3CRET")


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


AUTH = b64(f"{USER}:{PASSWORD}")


def config(document: Any) -> str:
    return json.dumps(document)


def assert_hidden(*texts: str) -> None:
    for text in texts:
        for secret in (*SECRETS, AUTH):
            assert secret not in text


def invalid(text: str) -> InvalidAuthConfig:
    with pytest.raises(InvalidAuthConfig) as caught:
        parse_auth_config(text)
    exc = caught.value
    assert exc.reason == "InvalidAuthConfig"
    assert isinstance(exc, JobError)
    assert_hidden(str(exc), repr(exc), exc.message, repr(exc.args))
    # No chained exception either: JSONDecodeError.doc would carry the whole text.
    assert exc.__context__ is None
    assert exc.__cause__ is None
    return exc


# --- formats -------------------------------------------------------------------------------


def test_auth_field_is_base64_user_password_split_on_first_colon() -> None:
    parsed = parse_auth_config(config({"auths": {"registry.example.com:5000": {"auth": AUTH}}}))
    assert parsed.auths == {"registry.example.com:5000": Credential(USER, PASSWORD)}


def test_seed_example() -> None:
    text = '{"auths":{"registry.example.com:5000":{"auth":"bXlfdXNlcm5hbWU6bXlfcGFzc3dvcmQ="}}}'
    parsed = parse_auth_config(text)
    assert parsed.auths["registry.example.com:5000"] == Credential("my_username", "my_password")


def test_username_and_password_fields() -> None:
    entry = {"username": USER, "password": PASSWORD, "email": "ci@example.com"}
    parsed = parse_auth_config(config({"auths": {"registry.example.com": entry}}))
    assert parsed.auths == {"registry.example.com": Credential(USER, PASSWORD)}


def test_identity_token() -> None:
    parsed = parse_auth_config(config({"auths": {"r.example.com": {"identitytoken": TOKEN}}}))
    assert parsed.auths == {"r.example.com": Credential("", "", identity_token=TOKEN)}


def test_identity_token_beside_a_user_name() -> None:
    entry = {"auth": b64(f"{USER}:"), "identitytoken": TOKEN}
    parsed = parse_auth_config(config({"auths": {"r.example.com": entry}}))
    assert parsed.auths["r.example.com"] == Credential(USER, "", identity_token=TOKEN)


def test_auth_overrides_username_and_password_as_in_docker() -> None:
    entry = {"auth": AUTH, "username": "other", "password": "other-password"}
    parsed = parse_auth_config(config({"auths": {"r.example.com": entry}}))
    assert parsed.auths["r.example.com"] == Credential(USER, PASSWORD)


def test_field_names_match_in_any_case_like_go() -> None:
    text = config(
        {
            "Auths": {"a.example.com": {"Auth": AUTH}, "b.example.com": {"identityToken": TOKEN}},
            "CredsStore": "pass",
            "credhelpers": {"c.example.com": "ecr-login"},
        }
    )
    parsed = parse_auth_config(text)
    assert parsed.auths["a.example.com"] == Credential(USER, PASSWORD)
    assert parsed.auths["b.example.com"].identity_token == TOKEN
    assert parsed.creds_store == "pass"
    assert parsed.cred_helpers == {"c.example.com": "ecr-login"}


def test_exact_field_name_wins_over_other_case() -> None:
    entry = {"Auth": b64("wrong:wrong"), "auth": AUTH}
    parsed = parse_auth_config(config({"auths": {"r.example.com": entry}}))
    assert parsed.auths["r.example.com"] == Credential(USER, PASSWORD)


@pytest.mark.parametrize(
    "encoded",
    [
        b64(f"{USER}:{PASSWORD}").rstrip("="),  # unpadded, as the kubelet accepts
        AUTH[:8] + "\n" + AUTH[8:] + "\r\n",  # line breaks, skipped by Go's decoder
    ],
)
def test_lenient_base64_forms(encoded: str) -> None:
    parsed = parse_auth_config(config({"auths": {"r.example.com": {"auth": encoded}}}))
    assert parsed.auths["r.example.com"] == Credential(USER, PASSWORD)


def test_nul_padding_trimmed_from_password_as_docker_does() -> None:
    parsed = parse_auth_config(config({"auths": {"r.example.com": {"auth": b64("u:p\x00\x00")}}}))
    assert parsed.auths["r.example.com"] == Credential("u", "p")


def test_non_ascii_credentials() -> None:
    parsed = parse_auth_config(config({"auths": {"r.example.com": {"auth": b64("ü:pässwörd")}}}))
    assert parsed.auths["r.example.com"] == Credential("ü", "pässwörd")


@pytest.mark.parametrize(
    "entry",
    [{}, {"email": "ci@example.com"}, {"auth": ""}, {"auth": None, "username": None}],
)
def test_entries_without_credentials_are_skipped(entry: dict[str, Any]) -> None:
    # `docker login` with a credsStore leaves `{}` entries behind.
    parsed = parse_auth_config(config({"auths": {"r.example.com": entry}}))
    assert parsed.auths == {}


def test_empty_and_partial_documents() -> None:
    assert parse_auth_config("{}") == AuthConfig()
    assert parse_auth_config('{"auths": null, "credsStore": null, "credHelpers": null}') == (
        AuthConfig()
    )
    assert parse_auth_config('{"credsStore": ""}').creds_store is None
    assert parse_auth_config('{"HttpHeaders": {"X": "y"}, "psFormat": "x"}') == AuthConfig()


def test_creds_store_and_cred_helpers() -> None:
    text = config(
        {
            "credsStore": "osxkeychain",
            "credHelpers": {
                "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login",
                "gcr.io": "gcloud",
                "registry.example.com:5000": "",
            },
        }
    )
    parsed = parse_auth_config(text)
    assert parsed.creds_store == "osxkeychain"
    assert parsed.cred_helpers == {
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login",
        "gcr.io": "gcloud",
        "registry.example.com:5000": "",
    }


def test_result_is_read_only() -> None:
    parsed = parse_auth_config(config({"auths": {"r.example.com": {"auth": AUTH}}}))
    with pytest.raises(TypeError):
        parsed.auths["other"] = Credential("a", "b")  # type: ignore[index]


# --- secrets stay hidden -------------------------------------------------------------------


def test_repr_and_str_hide_secrets() -> None:
    text = config(
        {"auths": {"a.example.com": {"auth": AUTH}, "b.example.com": {"identitytoken": TOKEN}}}
    )
    parsed = parse_auth_config(text)
    for value in (parsed, *parsed.auths.values()):
        assert_hidden(repr(value), str(value), f"{value}", f"{value!r}")
        assert USER not in repr(value)
    assert "a.example.com" in repr(parsed)
    assert "identity-token" in repr(parsed.auths["b.example.com"])


# --- key normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("registry.example.com", "registry.example.com"),
        ("https://registry.example.com", "registry.example.com"),
        ("http://registry.example.com/", "registry.example.com"),
        ("HTTPS://Registry.Example.COM/v2/", "registry.example.com"),
        ("registry.example.com/v1/", "registry.example.com"),
        ("registry.example.com/group/project", "registry.example.com"),
        ("registry.example.com:5000", "registry.example.com:5000"),
        ("https://registry.example.com:5000/v1/", "registry.example.com:5000"),
        ("Registry.Example.com:5000/v2/", "registry.example.com:5000"),
        ("  registry.example.com  ", "registry.example.com"),
        ("https://user:pw@registry.example.com/v2/", "registry.example.com"),
        ("localhost:5000", "localhost:5000"),
        ("[::1]:5000", "[::1]:5000"),
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("https://registry-1.docker.io/v2/", "docker.io"),
        ("Index.Docker.IO/v1/", "docker.io"),
        ("docker.io:443", "docker.io:443"),  # a port makes it another registry
        ("", ""),
    ],
)
def test_registry_key(key: str, expected: str) -> None:
    assert registry_key(key) == expected


def test_port_keeps_registries_apart() -> None:
    assert registry_key("registry.example.com") != registry_key("registry.example.com:5000")
    assert registry_key("registry.example.com:5000") != registry_key("registry.example.com:5001")
    text = config(
        {
            "auths": {
                "registry.example.com": {"auth": b64("plain:pw")},
                "registry.example.com:5000": {"auth": AUTH},
            }
        }
    )
    parsed = parse_auth_config(text)
    assert parsed.auths["registry.example.com"] == Credential("plain", "pw")
    assert parsed.auths["registry.example.com:5000"] == Credential(USER, PASSWORD)


def test_server_address() -> None:
    assert server_address("docker.io") == "https://index.docker.io/v1/"
    assert server_address("registry-1.docker.io") == "https://index.docker.io/v1/"
    assert server_address("Registry.Example.com:5000") == "registry.example.com:5000"


def test_keys_for_one_registry_prefer_dockers_own_spelling() -> None:
    first, second = b64("first:pw"), b64("second:pw")
    for entries in (
        {
            "https://registry.example.com/v2/": {"auth": first},
            "registry.example.com": {"auth": second},
        },
        {
            "registry.example.com": {"auth": second},
            "https://registry.example.com/v2/": {"auth": first},
        },
    ):
        parsed = parse_auth_config(config({"auths": entries}))
        assert parsed.auths == {"registry.example.com": Credential("second", "pw")}


def test_hub_keys_prefer_dockers_index_address() -> None:
    entries = {
        "docker.io": {"auth": b64("alias:pw")},
        "https://index.docker.io/v1/": {"auth": b64("index:pw")},
    }
    parsed = parse_auth_config(config({"auths": entries}))
    assert parsed.auths == {"docker.io": Credential("index", "pw")}


def test_other_spellings_first_in_file_wins() -> None:
    entries = {
        "https://registry.example.com/": {"auth": b64("first:pw")},
        "http://registry.example.com/v1/": {"auth": b64("second:pw")},
    }
    parsed = parse_auth_config(config({"auths": entries}))
    assert parsed.auths["registry.example.com"] == Credential("first", "pw")


def test_empty_entry_does_not_shadow_real_one() -> None:
    entries = {"registry.example.com": {}, "https://registry.example.com": {"auth": AUTH}}
    parsed = parse_auth_config(config({"auths": entries}))
    assert parsed.auths["registry.example.com"] == Credential(USER, PASSWORD)


def test_cred_helper_keys_are_normalised_with_the_same_rule() -> None:
    helpers = {"https://index.docker.io/v1/": "desktop", "docker.io": "pass"}
    parsed = parse_auth_config(config({"credHelpers": helpers}))
    assert parsed.cred_helpers == {"docker.io": "desktop"}


def test_key_without_a_host_is_ignored() -> None:
    parsed = parse_auth_config(config({"auths": {"https://": {"auth": AUTH}}}))
    assert parsed.auths == {}


# --- errors --------------------------------------------------------------------------------


def test_malformed_json_gives_position_not_text() -> None:
    text = '{"auths": {"registry.example.com": {"auth": "' + AUTH + '"'
    exc = invalid(text)
    assert exc.message.startswith("DOCKER_AUTH_CONFIG is not valid JSON: ")
    assert "(line 1, column " in exc.message


def test_malformed_json_on_a_later_line() -> None:
    text = '{\n  "auths": {\n    "r.example.com": {"auth": "' + AUTH + '",}\n  }\n}'
    exc = invalid(text)
    assert "(line 3, column " in exc.message


def test_source_name_is_used_in_messages() -> None:
    with pytest.raises(InvalidAuthConfig, match=r"^the operator's \$HOME/\.docker/config\.json"):
        parse_auth_config("[", source_name="the operator's $HOME/.docker/config.json")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([{"auth": AUTH}], "DOCKER_AUTH_CONFIG must be a JSON object, not an array"),
        ("S3CRET", "must be a JSON object, not a string"),
        (None, "must be a JSON object, not null"),
        ({"auths": "S3CRET"}, "auths must be an object, not a string"),
        ({"auths": [AUTH]}, "auths must be an object, not an array"),
        (
            {"auths": {"registry.example.com:5000": AUTH}},
            "the auths entry for registry 'registry.example.com:5000' must be an object, "
            "not a string",
        ),
        (
            {"auths": {"r.example.com": {"auth": 12345}}},
            "auth in the auths entry for registry 'r.example.com' must be a string, not a number",
        ),
        (
            {"auths": {"r.example.com": {"password": ["S3CRET"]}}},
            "password in the auths entry for registry 'r.example.com' must be a string",
        ),
        (
            {"auths": {"r.example.com": {"identitytoken": True}}},
            "identitytoken in the auths entry for registry 'r.example.com' must be a string, "
            "not a boolean",
        ),
        (
            {"auths": {"https://R.example.com/v2/": {"auth": "!!S3CRET!!"}}},
            "auth for registry 'r.example.com' is not valid base64",
        ),
        (
            {"auths": {"r.example.com": {"auth": b64("S3CRET") + "="}}},
            "auth for registry 'r.example.com' is not valid base64",
        ),
        (
            {"auths": {"r.example.com": {"auth": AUTH[:-3]}}},
            "auth for registry 'r.example.com'",
        ),
        (
            {"auths": {"r.example.com": {"auth": b64("nocolonS3CRET")}}},
            "auth for registry 'r.example.com' is not user:password",
        ),
        (
            {"auths": {"r.example.com": {"auth": b64(":S3CRET")}}},
            "auth for registry 'r.example.com' has an empty user name",
        ),
        (
            {"auths": {"r.example.com": {"auth": b64(b"\xff\xfe:S3CRET")}}},
            "auth for registry 'r.example.com' does not decode to UTF-8 text",
        ),
        ({"credsStore": 7}, "credsStore must be a string, not a number"),
        ({"credHelpers": ["ecr-login"]}, "credHelpers must be an object, not an array"),
        (
            {"credHelpers": {"r.example.com": None}},
            "the credHelpers entry for registry 'r.example.com' must be a string, not null",
        ),
    ],
)
def test_error_messages(document: Any, expected: str) -> None:
    exc = invalid(config(document))
    assert expected in exc.message


def test_bad_base64_in_one_entry_names_that_registry() -> None:
    entries = {"good.example.com": {"auth": AUTH}, "bad.example.com:5000": {"auth": "%%%"}}
    exc = invalid(config({"auths": entries}))
    assert "'bad.example.com:5000'" in exc.message
    assert "good.example.com" not in exc.message


def test_user_info_in_a_key_never_reaches_a_message() -> None:
    exc = invalid(config({"auths": {"https://robot:S3CRET@r.example.com/": "x"}}))
    assert "'r.example.com'" in exc.message
    assert "robot" not in exc.message


@pytest.mark.parametrize(
    "name", ["../evil", "/usr/bin/evil", "a/b", "a\\b", "..", "a..b", "-flag", "a b", "x\n"]
)
def test_helper_names_with_paths_are_refused(name: str) -> None:
    assert not valid_helper_name(name)
    exc = invalid(config({"credsStore": name}))
    assert "credsStore is not a valid credential helper name" in exc.message
    exc = invalid(config({"credHelpers": {"r.example.com": name}}))
    assert "credHelpers entry for registry 'r.example.com' is not a valid" in exc.message


@pytest.mark.parametrize(
    "name", ["ecr-login", "osxkeychain", "desktop.exe", "gcloud", "acr_env", "pass", "x1"]
)
def test_helper_names_accepted(name: str) -> None:
    assert valid_helper_name(name)
    assert parse_auth_config(config({"credsStore": name})).creds_store == name
