"""kopf's login takes the token of the operator's API client, whichever loader set it."""

from __future__ import annotations

import pytest
from kubernetes.aio import client

from cijob.main import _login_from


@pytest.mark.parametrize(
    "key, value",
    [
        ("BearerToken", "bearer abc.def"),  # load_incluster_config (the ServiceAccount token)
        ("BearerToken", "Bearer abc.def"),
        ("authorization", "Bearer abc.def"),  # a kubeconfig's token
    ],
)
def test_login_passes_the_bare_token(key: str, value: str) -> None:
    cfg = client.Configuration()
    cfg.host = "https://10.96.0.1:443"
    cfg.api_key = {key: value}
    info = _login_from(client.ApiClient(cfg))
    assert info.token == "abc.def"
    assert info.server == "https://10.96.0.1:443"
