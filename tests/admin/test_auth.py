"""Bearer parsing, the failed-auth limit, and the token cache's invalidation, in process."""

from __future__ import annotations

import asyncio

import pytest

from relay.access.tokens import DIRECT_REDIS, generate
from relay.admin.auth import TokenAuth, bearer
from relay.admin.ratelimit import FailureLimit
from relay.errors import RateLimited, Unauthorized
from relay.store.tokens import TokenStore
from tests.integration.helpers import eventually, run_async, storage_for
from tests.integration.redis_server import RedisServer


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("BEARER abc", "abc")],
)
def test_bearer(header: str, token: str) -> None:
    assert bearer(header) == token


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "abc"])
def test_bearer_refusals(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer(header)


def test_the_limit_is_per_address_and_ends() -> None:
    limit = FailureLimit(burst=3, window=10)
    for t in (0.0, 1.0, 2.0):
        limit.check("a", t)
        limit.failed("a", t)
    with pytest.raises(RateLimited) as e:
        limit.check("a", 3.0)
    assert e.value.retry_after == 7
    limit.check("b", 3.0)  # another address: unaffected
    limit.check("a", 10.0)  # the first failure is 10 s old: one more try
    assert limit.refused == 1


def test_the_limit_stays_bounded() -> None:
    limit = FailureLimit(burst=2, window=10, max_addresses=100)
    for i in range(1000):
        limit.failed(f"10.0.{i // 256}.{i % 256}", float(i))
    assert len(limit._failures) <= 100


def test_malformed_tokens_cost_no_lookup_and_the_cache_follows_changes(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        store = TokenStore(storage_for(redis_server.url))
        auth = TokenAuth(store, recheck_interval=0.1)
        running = asyncio.create_task(auth.run())
        await eventually(lambda: auth.trusted, what="the subscription")
        calls = 0
        find = store.find

        async def counting(digest: str):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            return await find(digest)

        store.find = counting  # type: ignore[method-assign]
        for bad in ("Bearer relay_pat_short", "Bearer " + generate()[:-1] + "x", "Bearer ghp_abc"):
            with pytest.raises(Unauthorized, match="malformed"):
                await auth.authenticate(bad, "a")
        assert calls == 0
        with pytest.raises(Unauthorized, match="unknown"):
            await auth.authenticate(f"Bearer {generate()}", "a")
        assert calls == 1
        token, record = await store.issue("ann", "reader", (), (), None, by=f"{DIRECT_REDIS}t")
        await asyncio.sleep(0.1)  # its announcement in: a lookup it overtakes is not cached
        assert (await auth.authenticate(f"Bearer {token}", "a")).id == record.id
        await auth.authenticate(f"Bearer {token}", "a")
        assert calls == 2 and auth.cached == 1  # the second from the cache
        await store.revoke(record.id, by=f"{DIRECT_REDIS}t")
        await eventually(lambda: auth.cached == 0, timeout=1, what="the revocation announced")
        with pytest.raises(Unauthorized, match="revoked"):
            await auth.authenticate(f"Bearer {token}", "a")
        # A change nobody announced (a hand edit): the periodic re-check drops it.
        token2, record2 = await store.issue("bob", "reader", (), (), None, by=f"{DIRECT_REDIS}t")
        await auth.authenticate(f"Bearer {token2}", "a")
        raw = await store.storage.client.hget(store.records_key, record2.id)
        await store.storage.client.hset(store.records_key, record2.id, raw.replace(b'"revoked":null', b'"revoked":1.0'))
        await eventually(lambda: record2.id not in auth._hashes, timeout=1, what="the re-check")
        with pytest.raises(Unauthorized, match="revoked"):
            await auth.authenticate(f"Bearer {token2}", "a")
        auth.stop()
        await asyncio.wait_for(running, 2)  # it stops by itself, promptly
        assert not auth.trusted

    run_async(scenario())
