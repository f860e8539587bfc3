"""The operator's API clients: the Lease's own pool, and a User-Agent naming the replica."""

from __future__ import annotations

import asyncio

from kubernetes.aio import client

from cijob.main import _api_client, _login_from, user_agent


def test_each_client_has_its_own_pool_and_the_replica_s_user_agent() -> None:
    cfg = client.Configuration(host="https://127.0.0.1:6443")
    cfg.connection_pool_maxsize = 100
    agent = user_agent("node-a-42")
    assert agent == "cijob-operator/node-a-42"

    async def build() -> tuple[int, int, str, str]:
        workers = _api_client(cfg, 64, agent)
        lease = _api_client(cfg, 1, agent)
        try:
            return (
                workers.configuration.connection_pool_maxsize,
                lease.configuration.connection_pool_maxsize,
                workers.user_agent,
                lease.user_agent,
            )
        finally:
            await workers.close()  # type: ignore[no-untyped-call]
            await lease.close()  # type: ignore[no-untyped-call]

    assert asyncio.run(build()) == (64, 1, agent, agent)
    assert cfg.connection_pool_maxsize == 100  # copies: the caller's configuration is intact


def test_kopf_sends_the_same_user_agent_and_credentials() -> None:
    cfg = client.Configuration(host="https://127.0.0.1:6443", api_key={"BearerToken": "Bearer t"})

    async def info() -> dict[str, str]:
        api = _api_client(cfg, 2, "cijob-operator/node-a-42")
        try:
            return _login_from(api).as_http_headers()
        finally:
            await api.close()  # type: ignore[no-untyped-call]

    assert asyncio.run(info()) == {
        "Authorization": "Bearer t",
        "User-Agent": "cijob-operator/node-a-42",
    }


def test_every_request_carries_the_user_agent() -> None:
    cfg = client.Configuration(host="https://127.0.0.1:6443")

    async def headers() -> dict[str, str]:
        api = _api_client(cfg, 2, "cijob-operator/node-a-42")
        try:
            _, _, sent, _, _ = await api.param_serialize(
                "PATCH", "/api/v1/namespaces/ns/pods/p", header_params={"Accept": "x"}
            )
            return dict(sent)
        finally:
            await api.close()  # type: ignore[no-untyped-call]

    assert asyncio.run(headers())["User-Agent"] == "cijob-operator/node-a-42"
