"""The simulator retries a status write the way the kubelet does: only on transient failures."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from testground import kubesim
from testground.kubeapi import ApiError, Endpoint


class _FlakyApi:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    async def request(self, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return 200, {}


def _sim(api: _FlakyApi, monkeypatch: pytest.MonkeyPatch) -> kubesim.KubeSim:
    async def no_sleep(_: float) -> None:
        return None

    monkeypatch.setattr(kubesim.asyncio, "sleep", no_sleep)
    sim = kubesim.KubeSim(
        endpoint=Endpoint("https://127.0.0.1:1", ssl.create_default_context(), {})
    )
    sim.api = api  # type: ignore[assignment]
    return sim


def test_timeouts_and_overload_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    api = _FlakyApi(
        [TimeoutError(), ApiError("PATCH", "/p", 429, "{}"), ApiError("PATCH", "/p", 503, "{}")]
    )
    assert asyncio.run(_sim(api, monkeypatch)._request("PATCH", "/p")) == (200, {})
    assert api.calls == 4


def test_a_refusal_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    api = _FlakyApi([ApiError("PATCH", "/p", 409, "{}")])
    with pytest.raises(ApiError):
        asyncio.run(_sim(api, monkeypatch)._request("PATCH", "/p"))
    assert api.calls == 1


def test_it_gives_up_after_the_last_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    api = _FlakyApi([TimeoutError() for _ in range(kubesim.WRITE_ATTEMPTS)])
    with pytest.raises(TimeoutError):
        asyncio.run(_sim(api, monkeypatch)._request("PATCH", "/p"))
    assert api.calls == kubesim.WRITE_ATTEMPTS
