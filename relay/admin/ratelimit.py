"""Failed authentications per client address: past a burst, that address alone is refused for a while."""

from __future__ import annotations

import math
from collections import deque

from relay.errors import RateLimited


class FailureLimit:
    """`burst` failures within `window` seconds from one address: 429 (with Retry-After) for that address until
    the oldest of them is `window` old. Others, and that address's earlier successes, are unaffected."""

    def __init__(self, burst: int = 10, window: float = 10.0, max_addresses: int = 10_000) -> None:
        self.burst, self.window, self.max_addresses = burst, window, max_addresses
        self._failures: dict[str, deque[float]] = {}
        self.refused = 0  # requests answered 429, for /metrics

    def check(self, address: str, now: float) -> None:
        """RateLimited if `address` is over the limit."""
        times = self._failures.get(address)
        if times is None or len(times) < self.burst:
            return
        wait = times[0] + self.window - now
        if wait <= 0:
            times.popleft()
            return
        self.refused += 1
        raise RateLimited("too many failed authentications from this address", max(1, math.ceil(wait)))

    def failed(self, address: str, now: float) -> None:
        times = self._failures.get(address)
        if times is None:
            if len(self._failures) >= self.max_addresses:  # bounded: drop the quietest (oldest last failure)
                self._prune(now)
            times = self._failures[address] = deque(maxlen=self.burst)
        times.append(now)

    def _prune(self, now: float) -> None:
        stale = [a for a, t in self._failures.items() if not t or t[-1] + self.window <= now]
        for address in stale or sorted(self._failures, key=lambda a: self._failures[a][-1])[: self.max_addresses // 10]:
            del self._failures[address]
