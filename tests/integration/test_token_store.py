"""relay.store.tokens against a real redis-server: records and index, rotation, revocation, last use, changes, audit."""

from __future__ import annotations

import asyncio

import pytest

from relay.access.tokens import DIRECT_REDIS, Role, token_hash
from relay.errors import Forbidden, NotFoundError, ValidationError
from relay.store.tokens import TokenStore, created_view, view
from relay.wire import codec
from tests.integration.helpers import eventually, run_async, storage_for
from tests.integration.redis_server import RedisServer

BREAK_GLASS = f"{DIRECT_REDIS}ops"


def test_issue_stores_only_the_hash_and_finds_the_token_by_it(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        store = TokenStore(storage_for(redis_server.url))
        token, record = await store.issue("ann", "writer", ("prod",), ("checkout-*",), "7d", by=BREAK_GLASS)
        assert record.created_by == BREAK_GLASS and record.role is Role.WRITER
        assert record.expires - record.created == pytest.approx(7 * 86_400)
        assert (await store.find(token_hash(token))) == record
        assert await store.find(token_hash(token + "x")) is None
        assert (await store.get(record.id)) == record
        client = store.storage.client
        stored = codec.loads(await client.hget("relay:tokens", record.id))
        assert stored["hash"] == token_hash(token) and token not in codec.dumps(stored).decode()
        assert (await client.hget("relay:tokens:by-hash", token_hash(token))).decode() == record.id
        shown = created_view(token, record)
        assert set(shown) == {"id", "token", "name", "role", "envs", "flags", "expires"}
        assert "hash" not in view(record)

    run_async(scenario())


def test_rotation_swaps_the_hash_and_revocation_keeps_it_findable(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        store = TokenStore(storage_for(redis_server.url))
        old, record = await store.issue("bob", "reader", (), (), None, by=BREAK_GLASS)
        new, rotated = await store.rotate(record.id, by=BREAK_GLASS)
        assert rotated.id == record.id and rotated.expires == record.expires and new != old
        assert await store.find(token_hash(old)) is None
        assert (await store.find(token_hash(new))) == rotated
        revoked = await store.revoke(record.id, by=BREAK_GLASS)
        assert revoked.revoked is not None
        assert (await store.find(token_hash(new))) == revoked  # "revoked", rather than "unknown"
        assert (await store.revoke(record.id, by=BREAK_GLASS)) == revoked  # the first revocation's time stays
        with pytest.raises(ValidationError):
            await store.rotate(record.id, by=BREAK_GLASS)
        with pytest.raises(NotFoundError):
            await store.get("tok_000000000000")

    run_async(scenario())


def test_a_token_issues_rotates_and_revokes_only_within_its_own_reach(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        store = TokenStore(storage_for(redis_server.url))
        _, admin = await store.issue("root", "admin", (), (), "30d", by=BREAK_GLASS)
        _, writer = await store.issue("wendy", "writer", ("prod",), (), "10d", by=admin)
        assert writer.created_by == admin.id
        with pytest.raises(Forbidden):
            await store.issue("escalated", "admin", (), (), "1d", by=writer)
        with pytest.raises(Forbidden):
            await store.issue("longer", "admin", (), (), "90d", by=admin)  # past the issuer's own expiry
        _, other = await store.issue("ola", "reader", ("prod",), (), "5d", by=admin)
        with pytest.raises(Forbidden):
            await store.rotate(other.id, by=writer)
        with pytest.raises(Forbidden):
            await store.revoke(other.id, by=writer)
        _, itself = await store.rotate(writer.id, by=writer)  # a token may rotate itself, keeping its expiry
        assert itself.expires == writer.expires
        assert (await store.revoke(other.id, by=admin)).revoked is not None

    run_async(scenario())


def test_last_use_is_written_at_most_once_a_minute_without_rewriting_the_record(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        store = TokenStore(storage_for(redis_server.url))
        _, record = await store.issue("ann", "reader", (), (), None, by=BREAK_GLASS)
        raw = await store.storage.client.hget("relay:tokens", record.id)
        store.touch(record.id, 1000.0)
        await eventually(lambda: not store._touching, what="the last-used write")
        store.touch(record.id, 1030.0)  # within the minute: not written
        await asyncio.sleep(0.05)
        assert (await store.get(record.id)).last_used == 1000.0
        store.touch(record.id, 1061.0)
        await eventually(lambda: not store._touching, what="the second write")
        assert (await store.get(record.id)).last_used == 1061.0
        assert await store.storage.client.hget("relay:tokens", record.id) == raw

    run_async(scenario())


def test_changes_are_announced_and_audited_without_secrets(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        store = TokenStore(storage_for(redis_server.url))
        seen: list[str | bool] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(store.watch(seen.append, seen.append, stop))
        await eventually(lambda: seen == [True], what="the subscription")
        token, record = await store.issue("ann", "admin", (), (), None, by=BREAK_GLASS)
        new, _ = await store.rotate(record.id, by=BREAK_GLASS)
        await store.revoke(record.id, by=BREAK_GLASS)
        await eventually(lambda: seen == [True, record.id, record.id, record.id], what="three announcements")
        stop.set()
        await asyncio.wait_for(watcher, 2)
        assert seen[-1] is False  # told it stopped following
        assert (await store.records([record.id, "tok_000000000000"]))[record.id] == await store.get(record.id)
        entries = await store.audit()
        assert [e["action"] for e in entries] == ["token-revoke", "token-rotate", "token-create"]
        assert {(e["actor"], e["via"], e["target"]) for e in entries} == {(BREAK_GLASS, "direct-redis", record.id)}
        text = codec.dumps(entries).decode()
        for secret in (token, new, token_hash(token), token_hash(new)):
            assert secret not in text

    run_async(scenario())
