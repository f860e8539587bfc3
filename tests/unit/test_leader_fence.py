"""The fence in Kube: no write leaves a replica whose Elector says it does not hold the Lease."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cijob.kube import Kube, NotLeader


class Response:
    status = 200

    async def read(self) -> bytes:
        return b'{"metadata": {"name": "p"}}'


class FakeClient:
    """The two ApiClient calls Kube makes; records what was sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def param_serialize(self, method: str, path: str, **_: Any) -> tuple[Any, ...]:
        return method, path, {}, None, None

    async def call_api(self, method: str, url: str, *_: Any, **__: Any) -> Response:
        self.sent.append(f"{method} {url}")
        return Response()


def kube(holds: bool) -> tuple[Kube, FakeClient]:
    fake = FakeClient()
    return Kube(fake, fence=lambda: holds), fake  # type: ignore[arg-type]


POD = {"metadata": {"name": "p"}}


def test_writes_are_refused_without_the_lease() -> None:
    k, fake = kube(holds=False)

    async def writes() -> None:
        for call in (
            k.create_pod("ns", POD),
            k.delete_pod("ns", "p", "uid-p"),
            k.stop_pod("ns", "p", "uid-p", {}),
            k.patch_status("ns", "j", "uid-j", {"phase": "Failed"}),
            k.delete_job("ns", "j", "uid"),
        ):
            with pytest.raises(NotLeader):
                await call

    asyncio.run(writes())
    assert fake.sent == []


def test_reads_pass_without_the_lease() -> None:
    k, fake = kube(holds=False)
    assert asyncio.run(k.get_pod("ns", "p")) == POD
    assert fake.sent == ["GET /api/v1/namespaces/ns/pods/p"]


def test_writes_pass_with_the_lease_and_without_a_fence() -> None:
    k, fake = kube(holds=True)
    asyncio.run(k.delete_pod("ns", "p", "uid-p"))
    unfenced = Kube(fake)  # type: ignore[arg-type]
    asyncio.run(unfenced.delete_pod("ns", "q", "uid-q"))
    assert fake.sent == [
        "DELETE /api/v1/namespaces/ns/pods/p",
        "DELETE /api/v1/namespaces/ns/pods/q",
    ]
