"""When a job is looked at again: one timer per job, and the backoff of what keeps failing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# A reconcile that failed (the API server unreachable, say), or a pod create the cluster may
# yet allow, is tried again after this many seconds, doubled each time up to the maximum.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
# All retries together, as client-go's default controller rate limiter: a token bucket.
RETRIES_PER_SECOND = 10.0
RETRY_BURST = 100


class Timers(Generic[K]):
    """At most one pending wake-up per key; a new one replaces the old."""

    def __init__(self, fire: Callable[[K], None]) -> None:
        self._fire = fire
        self._handles: dict[K, asyncio.TimerHandle] = {}

    def __contains__(self, key: K) -> bool:
        return key in self._handles

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._handles))

    def clear(self) -> None:
        for key in list(self._handles):
            self.cancel(key)

    def schedule(self, key: K, delay: float) -> None:
        self.cancel(key)

        def fire() -> None:
            self._handles.pop(key, None)
            self._fire(key)

        # A little late rather than early: a deadline rechecked just before it passed
        # would need another timer.
        self._handles[key] = asyncio.get_running_loop().call_later(max(delay, 0.0) + 0.1, fire)

    def cancel(self, key: K) -> None:
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()


@dataclass
class Backoff(Generic[K]):
    """client-go's default rate limiter: the later of a per-key exponential backoff and
    a token bucket shared by all keys, so a cluster-wide refusal cannot become a storm."""

    first: float = RETRY_FIRST_SECONDS
    maximum: float = RETRY_MAX_SECONDS
    rate: float = RETRIES_PER_SECOND
    burst: int = RETRY_BURST
    clock: Callable[[], float] = time.monotonic
    failures: dict[K, int] = field(default_factory=dict)
    _tokens: float | None = None
    _last: float = 0.0

    def when(self, key: K) -> float:
        """Seconds until `key` may be tried again; counts one more failure of it."""
        n = self.failures.get(key, 0)
        self.failures[key] = n + 1
        own = min(self.first * 2.0**n, self.maximum)
        return max(own, self._take())

    def forget(self, key: K) -> None:
        self.failures.pop(key, None)

    def _take(self) -> float:
        now = self.clock()
        tokens = float(self.burst) if self._tokens is None else self._tokens
        tokens = min(self.burst, tokens + (now - self._last) * self.rate) - 1
        self._tokens, self._last = tokens, now
        return 0.0 if tokens >= 0 else -tokens / self.rate
