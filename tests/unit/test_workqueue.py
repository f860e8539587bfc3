"""The work queue: one entry per key, one worker per key, urgent keys first but never alone."""

from __future__ import annotations

import asyncio

from cijob.workqueue import WorkQueue


def _take_all(q: WorkQueue[str]) -> list[str]:
    out = []
    while (key := q.get_nowait()) is not None:
        out.append(key)
        q.done(key)
    return out


def test_a_key_added_many_times_is_queued_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    for _ in range(3):
        q.add("a")
    q.add("b")
    assert _take_all(q) == ["a", "b"]


def test_a_key_added_while_processed_is_queued_again_only_when_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get_nowait() == "a"
    q.add("a")  # a newer state arrived while a worker had the older one
    assert q.get_nowait() is None  # never two workers on one key
    q.done("a")
    assert q.get_nowait() == "a"
    q.done("a")
    assert not q.busy


def test_urgent_keys_go_first_and_the_lanes_alternate() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("n1", "n2", "n3"):
        q.add(key)
    for key in ("u1", "u2"):
        q.add(key, urgent=True)
    assert _take_all(q) == ["u1", "n1", "u2", "n2", "n3"]


def test_get_waits_for_a_key_and_wakes_one_worker_per_key() -> None:
    async def scenario() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        got: list[str] = []

        async def worker() -> None:
            key = await q.get()
            got.append(key)
            q.done(key)

        workers = [asyncio.create_task(worker()) for _ in range(3)]
        await asyncio.sleep(0)
        q.add("a")
        q.add("b")
        await asyncio.sleep(0.01)
        pending = [w for w in workers if not w.done()]
        for w in pending:
            w.cancel()
        return [*sorted(got), f"{len(pending)} waiting"]

    assert asyncio.run(scenario()) == ["a", "b", "1 waiting"]
