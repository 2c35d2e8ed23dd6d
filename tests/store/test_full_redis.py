"""A kill switch on a full Redis (a real redis-server at its maxmemory, noeviction): the write path
frees stored events, oldest first, writes again in the same one script, and says so; and what a
node warns about Redis's memory policy (relay.store.memory)."""

from __future__ import annotations

import pytest
from redis.exceptions import OutOfMemoryError

from relay.errors import RedisUnavailable
from relay.store.events import EventSink
from relay.store.memory import memory_warnings, read_policy
from relay.store.storage import Storage
from relay.store.writes import WritePath
from tests.integration.helpers import run_async, simple_flag, storage_for
from tests.integration.redis_server import RedisServer

BATCH = b'[{"pad":"' + b"x" * 100_000 + b'"}]'


async def fill_with_events(storage: Storage, env: str, headroom: int = 3_000_000) -> int:
    """Set maxmemory `headroom` bytes above what Redis uses, then store events until it refuses
    them (large batches, then small ones to the last few bytes); the number of batches stored."""
    used = int((await storage.client.info("memory"))["used_memory"])
    await storage.client.config_set("maxmemory-policy", "noeviction")
    await storage.client.config_set("maxmemory", used + headroom)
    sink = EventSink(storage, max_entries=1_000_000, max_bytes=1 << 40)
    stored = 0
    for batch in (BATCH, BATCH[:1000]):
        for _ in range(10_000):
            try:
                await sink.append(env, source="server", payload_id="", events=batch, now_ms=stored)
            except RedisUnavailable as e:
                assert e.condition == "out_of_memory"
                break
            stored += 1
    return stored


def test_a_toggle_on_a_full_redis_frees_the_oldest_events_and_says_so(redis_server: RedisServer) -> None:
    async def body() -> None:
        storage = storage_for(redis_server.url)
        writer = WritePath(storage, actor="ann")
        await writer.create_environment("prod")
        await writer.create_environment("dev")
        await writer.put_item("prod", "flag", simple_flag("checkout"))
        stored = await fill_with_events(storage, "dev")
        assert stored > 10
        with pytest.raises(OutOfMemoryError):  # Redis refuses any write now
            await storage.client.set("probe", b"x" * 2000)

        result = await writer.toggle("prod", "checkout", False)
        assert result.items[0]["on"] is False and result.data_versions == [2]
        (note,) = result.notes
        assert note.startswith("Redis was out of memory: relay freed ") and "oldest first" in note
        assert result.to_dict()["notes"] == [note]
        assert (await writer.get_item("prod", "flag", "checkout"))["on"] is False
        left = await storage.client.xrange(storage.key("dev", "events"))
        assert 0 < len(left) < stored and left[0][1][b"time"] != b"0"  # only the oldest went
        again = await writer.toggle("prod", "checkout", True)  # there is room now: nothing to free
        assert again.notes == [] and again.data_versions == [3]

    run_async(body())


def test_a_write_that_still_does_not_fit_fails_whole_and_says_what_was_tried(redis_server: RedisServer) -> None:
    async def body() -> None:
        storage = storage_for(redis_server.url)
        writer = WritePath(storage, actor="ann")
        await writer.create_environment("prod")
        await writer.put_item("prod", "flag", simple_flag("checkout"))
        await storage.client.config_set("maxmemory", 1)  # nothing to free can make room
        with pytest.raises(RedisUnavailable, match=r"out of memory.*also after relay freed 0 stored event batches"):
            await writer.toggle("prod", "checkout", False)
        await storage.client.config_set("maxmemory", 0)
        flag = await writer.get_item("prod", "flag", "checkout")
        assert flag["on"] is True and flag["version"] == 1  # all or nothing
        assert [e["action"] for e in await writer.audit("prod")] == ["create", "env-create"]

    run_async(body())


def test_the_memory_policy_is_read_and_warned_about(redis_server: RedisServer) -> None:
    async def body() -> None:
        storage = storage_for(redis_server.url)
        writer = WritePath(storage, actor="ann")
        await writer.create_environment("prod")
        await writer.create_environment("dev")
        sink = EventSink(storage, max_entries=100, max_bytes=16 << 20)
        assert await memory_warnings(storage, sink, events_max_bytes=16 << 20) == []  # no maxmemory, noeviction

        await storage.client.config_set("maxmemory-policy", "allkeys-lru")
        (evicts,) = await memory_warnings(storage, sink, events_max_bytes=16 << 20)
        assert "allkeys-lru" in evicts and "flags" in evicts and "noeviction" in evicts

        await storage.client.config_set("maxmemory-policy", "volatile-lru")  # relay sets no TTL: fine
        await storage.client.config_set("maxmemory", 30 << 20)
        (room,) = await memory_warnings(storage, sink, events_max_bytes=16 << 20)
        assert "maxmemory is 30 MB" in room and "up to 32 MB (2 environments" in room and "writes could fail" in room
        assert await memory_warnings(storage, sink, events_max_bytes=1 << 20) == []  # a budget that fits
        assert await memory_warnings(storage, None, events_max_bytes=16 << 20) == []  # events on another Redis

        # A managed Redis that refuses CONFIG: INFO says the same.
        await storage.client.config_set("maxmemory-policy", "allkeys-lfu")
        await storage.client.execute_command("ACL", "SETUSER", "default", "-config")
        policy = await read_policy(storage)
        assert policy.policy == "allkeys-lfu" and policy.maxmemory == 30 << 20 and "NOPERM" in policy.refused.upper()
        (evicts,) = await memory_warnings(storage, sink, events_max_bytes=1 << 20)
        assert "allkeys-lfu" in evicts

    run_async(body())
