"""Per-credential rate limits for event posts: a token bucket per credential, in this node's memory.

A client-side ID is public, so anyone can post events with it: the bucket bounds what one
credential can make this node parse and store. A post takes one token before its body is read
(a refused post costs almost nothing) and, once read, one more per `unit` bytes of inflated body
beyond the first: the bucket may go into debt for a large body, which later posts then wait out.
Buckets exist only for credentials already authorized (unknown ones get 401/404 first), and at
most `max_buckets` of them: past that, full buckets (the same as none) go first, then the oldest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from relay.errors import RateLimited

UNIT = 65_536  # bytes of inflated body one token pays for


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class RateLimiter:
    """`rate` tokens a second per credential, up to `burst`; `rate` 0: no limit."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        unit: int = UNIT,
        max_buckets: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.unit = unit
        self.max_buckets = max_buckets
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self.refused = 0

    def take(self, credential: str) -> None:
        """One token for a post by `credential`, or RateLimited with the seconds until there is one."""
        if not self.rate:
            return
        bucket = self._refilled(credential)
        if bucket.tokens < 1:
            self.refused += 1
            wait = max(1, math.ceil((1 - bucket.tokens) / self.rate))
            raise RateLimited(f"over {self.rate:g} event posts a second for this credential", retry_after=wait)
        bucket.tokens -= 1

    def charge(self, credential: str, body_bytes: int) -> None:
        """The rest of a post's cost once its body is read: a token per `unit` beyond the first."""
        extra = (body_bytes - 1) // self.unit if body_bytes > 0 else 0
        if not self.rate or extra <= 0:
            return
        bucket = self._refilled(credential)
        bucket.tokens = max(bucket.tokens - extra, -self.burst)  # debt, at most one bucket's worth

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, credential: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(credential)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._evict(now)
            bucket = self._buckets[credential] = _Bucket(float(self.burst), now)
            return bucket
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        return bucket

    def _evict(self, now: float) -> None:
        full = [c for c, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.burst]
        for credential in full:
            del self._buckets[credential]
        while len(self._buckets) >= self.max_buckets:  # none full: the oldest first (dicts keep insertion order)
            del self._buckets[next(iter(self._buckets))]
