"""Keys waiting to be reconciled: each at most once in the queue, never on two workers at once."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """client-go's workqueue, in two lanes.

    The watches only record the newest object and add its key; workers reconcile keys. A
    burst of events for one job is then one reconcile of its newest state (under load, a
    pod that went Running and Succeeded between two looks costs one status write, not two),
    and memory holds one copy of each object, not a queue of its events.

    Keys added as urgent (jobs that have no pod yet) are taken before the others, but the
    lanes alternate while both have keys, so neither can starve the other.
    """

    def __init__(self) -> None:
        self._lanes: tuple[deque[K], deque[K]] = (deque(), deque())
        self._queued_at: dict[K, float] = {}
        # Told how long each key waited in a lane before a worker took it (the metrics').
        self.on_taken: Callable[[float], None] | None = None
        self._dirty: set[K] = set()  # queued, or to be queued again once processed
        self._processing: set[K] = set()
        self._urgent_next = True
        # One token per queued key: asyncio.Queue wakes exactly one waiting worker per key.
        self._tokens: asyncio.Queue[None] = asyncio.Queue()

    @property
    def busy(self) -> bool:
        """Anything queued or being processed."""
        return bool(self._dirty or self._processing)

    @property
    def depth(self) -> int:
        """Keys in the lanes, waiting for a worker."""
        return len(self._lanes[0]) + len(self._lanes[1])

    def add(self, key: K, urgent: bool = False) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # done() queues it again: the worker on it may have read an older state
        self._enqueue(key, 0 if urgent else 1)

    def get_nowait(self) -> K | None:
        """The next key to work on, now marked as processing; None if there is none."""
        urgent, normal = self._lanes
        if not urgent and not normal:
            return None
        lane = urgent if (urgent and (self._urgent_next or not normal)) else normal
        self._urgent_next = lane is normal
        key = lane.popleft()
        queued_at = self._queued_at.pop(key, None)
        if self.on_taken is not None and queued_at is not None:
            self.on_taken(time.monotonic() - queued_at)
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    async def get(self) -> K:
        while True:
            await self._tokens.get()
            key = self.get_nowait()
            if key is not None:  # a token can outlive its key taken by get_nowait()
                return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._enqueue(key, 1)

    def _enqueue(self, key: K, lane: int) -> None:
        self._lanes[lane].append(key)
        self._queued_at[key] = time.monotonic()
        self._tokens.put_nowait(None)
