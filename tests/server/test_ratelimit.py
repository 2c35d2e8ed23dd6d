"""relay.server.ratelimit: a token bucket per credential, large bodies paying more, bounded in memory."""

from __future__ import annotations

import pytest

from relay.errors import RateLimited
from relay.server.ratelimit import UNIT, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate_and_retry_after_says_when() -> None:
    clock = Clock()
    limits = RateLimiter(2, 5, clock=clock)
    for _ in range(5):
        limits.take("client:prod")
    with pytest.raises(RateLimited) as e:
        limits.take("client:prod")
    assert e.value.status_code == 429 and e.value.retry_after == 1 and e.value.code == "rate_limited"
    limits.take("client:dev")  # another credential has its own bucket
    clock.now += 0.5  # one token back at 2 a second
    limits.take("client:prod")
    with pytest.raises(RateLimited):
        limits.take("client:prod")
    clock.now += 100  # refilled, but never past the burst
    for _ in range(5):
        limits.take("client:prod")
    with pytest.raises(RateLimited):
        limits.take("client:prod")
    assert limits.refused == 3


def test_a_large_body_costs_a_token_per_unit_and_may_go_into_debt() -> None:
    clock = Clock()
    limits = RateLimiter(10, 20, clock=clock)
    limits.take("sdk:k")
    limits.charge("sdk:k", UNIT)  # one unit: the token taken already paid for it
    limits.take("sdk:k")
    limits.charge("sdk:k", 16 * UNIT)  # 15 more: 3 left
    for _ in range(3):
        limits.take("sdk:k")
    limits.charge("sdk:k", 1000 * UNIT)  # far beyond: the debt stops at one bucket
    with pytest.raises(RateLimited) as e:
        limits.take("sdk:k")
    assert e.value.retry_after == 3  # 21 tokens at 10 a second
    clock.now += 2.2
    limits.take("sdk:k")


def test_no_limit_at_rate_zero_and_the_buckets_are_bounded() -> None:
    off = RateLimiter(0, 1)
    for _ in range(1000):
        off.take("client:prod")
    assert len(off) == 0
    clock = Clock()
    limits = RateLimiter(1, 2, max_buckets=100, clock=clock)
    for n in range(1000):
        limits.take(f"client:{n}")
        assert len(limits) <= 100
    limits.take("client:999")  # the newest survived
    with pytest.raises(RateLimited):
        limits.take("client:999")
