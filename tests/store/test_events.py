"""relay.store.events against a real redis-server: stored once per payload ID, each environment's
stream within its byte and entry budget (the counter exact), the dedupe set bounded, and the
oldest events of every environment freed when a write needs the room."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest

from relay.errors import RedisUnavailable
from relay.runtime.logs import Throttled
from relay.store.events import Appended, EventSink, entry_size, free_events
from relay.store.storage import Storage
from tests.integration.helpers import run_async, storage_for
from tests.integration.redis_server import RedisServer


def scenario(redis: RedisServer, body: Callable[[Storage], Awaitable[None]]) -> None:
    run_async(body(storage_for(redis.url)))


def batch(n: int, size: int = 100) -> bytes:
    """A compact batch of about `size` bytes, numbered `n`."""
    return b'[{"n":%d,"pad":"%s"}]' % (n, b"x" * max(0, size - 20))


async def stream(storage: Storage, env: str = "prod") -> list[tuple[str, dict[bytes, bytes]]]:
    return [(i.decode(), f) for i, f in await storage.client.xrange(storage.key(env, "events"))]


async def counted(storage: Storage, env: str = "prod") -> int:
    return int(await storage.client.get(storage.key(env, "events:bytes")) or 0)


def test_sdk_events_are_stored_once_per_payload_id(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        sink = EventSink(storage, max_entries=100, max_bytes=1_000_000)

        def append(payload_id: str, data: bytes, now_ms: int = 7) -> Awaitable[Appended]:
            return sink.append("prod", source="server", payload_id=payload_id, events=data, now_ms=now_ms)

        assert await append("p1", b"[1]") is Appended.STORED
        assert await append("p1", b"[1]") is Appended.DUPLICATE  # the SDK's retry of the same payload
        assert await append("", b"[2]") is Appended.STORED  # no ID: nothing to tell retries by
        assert await append("", b"[2]") is Appended.STORED
        events = await sink.read("prod")
        assert [e["events"] for e in events] == ["[2]", "[2]", "[1]"]
        assert {(e["source"], e["time"]) for e in events} == {("server", "7")}
        assert await sink.read("dev") == []
        # An hour later the ID is forgotten (the dedupe set keeps a window, not every ID ever seen).
        assert await append("p1", b"[1]", now_ms=7 + 3_600_001) is Appended.STORED

    scenario(redis_server, body)


def test_the_stream_stays_within_its_byte_budget_and_the_counter_is_exact(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        sink = EventSink(storage, max_entries=1000, max_bytes=20_000)
        for n in range(300):
            size = (100, 1500, 40)[n % 3]  # uneven batches: several trimmed for one, or none
            await sink.append("prod", source="browser", payload_id=f"p{n}", events=batch(n, size), now_ms=n)
            entries = await stream(storage)
            assert await counted(storage) == sum(entry_size(f) for _, f in entries) <= 20_000
        kept = [int(f[b"time"]) for _, f in await stream(storage)]
        assert kept == list(range(300 - len(kept), 300))  # the newest, in order: the oldest went first
        assert (await sink.stored_bytes(["prod", "dev"]))["dev"] == 0
        assert await sink.append("prod", source="x", payload_id="", events=batch(0, 20_001), now_ms=1) is (
            Appended.TOO_LARGE
        )
        assert [int(f[b"time"]) for _, f in await stream(storage)] == kept  # nothing trimmed for it

    scenario(redis_server, body)


def test_the_stream_keeps_at_most_max_entries(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        sink = EventSink(storage, max_entries=10, max_bytes=10_000_000)
        for n in range(25):
            await sink.append("prod", source="server", payload_id="", events=batch(n), now_ms=n)
        entries = await stream(storage)
        assert [int(f[b"time"]) for _, f in entries] == list(range(15, 25))
        assert await counted(storage) == sum(entry_size(f) for _, f in entries)

    scenario(redis_server, body)


def test_a_stream_from_before_the_counter_is_measured_once_then_trimmed(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        key = storage.key("prod", "events")
        for n in range(50):  # the old layout: whole inflated batches
            await storage.client.xadd(key, {"kind": "analytics", "source": "server", "body": "x" * 10_000, "time": n})
        sink = EventSink(storage, max_entries=100_000, max_bytes=100_000)
        await sink.append("prod", source="server", payload_id="", events=batch(1), now_ms=99)
        entries = await stream(storage)
        assert 1 < len(entries) < 12 and entries[-1][1][b"time"] == b"99"  # ~500 KB of old batches trimmed
        assert await counted(storage) <= 100_000

    scenario(redis_server, body)


def test_the_dedupe_set_is_bounded(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        sink = EventSink(storage, max_entries=100_000, max_bytes=10_000_000, dedupe_max=50)
        for n in range(500):
            await sink.append("prod", source="browser", payload_id=f"{n:036d}", events=b"[1]", now_ms=1000 + n)
        assert await storage.client.zcard(storage.key("prod", "events:seen")) == 50
        assert await storage.client.dbsize() == 3  # stream, counter, dedupe set: no key per payload ID
        newest = f"{499:036d}"
        again = await sink.append("prod", source="b", payload_id=newest, events=b"[1]", now_ms=2000)
        assert again is Appended.DUPLICATE

    scenario(redis_server, body)


def test_freeing_takes_the_oldest_events_of_every_environment(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        for env in ("a", "b", "c"):
            await storage.create_environment(env, b'{"key":"%s"}' % env.encode())
        sink = EventSink(storage, max_entries=1000, max_bytes=10_000_000)
        for n in range(30):  # a, b, a, b, …: interleaved in time; c has none
            env = "ab"[n % 2]
            await sink.append(env, source="server", payload_id="", events=batch(n, 1000), now_ms=n)
        entries = [f for env in "ab" for _, f in await stream(storage, env)]
        oldest = sorted((int(f[b"time"]), entry_size(f)) for f in entries)
        need = sum(size for _, size in oldest[:7])
        freed = await free_events(storage, need - 1)  # the seven oldest, three of one stream and four of the other
        assert (freed.entries, freed.bytes, freed.environments) == (7, need, 3)
        left = sorted(int(f[b"time"]) for f in [f for env in "ab" for _, f in await stream(storage, env)])
        assert left == list(range(7, 30))
        for env in "ab":
            assert await counted(storage, env) == sum(entry_size(f) for _, f in await stream(storage, env))
        everything = await free_events(storage, 10**12)
        assert everything.entries == 23 and await counted(storage, "a") == await counted(storage, "b") == 0

    scenario(redis_server, body)


def test_redis_trouble_is_relay_s_error_and_one_log_line(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(storage: Storage) -> None:
        sink = EventSink(storage, max_entries=10, max_bytes=10_000, log=Throttled(logging.getLogger("t.redis")))
        await storage.client.config_set("maxmemory", 1)  # below what Redis uses: every write refused
        for _ in range(20):
            with pytest.raises(RedisUnavailable) as e:
                await sink.append("prod", source="server", payload_id="p", events=b"[1]", now_ms=1)
            assert e.value.condition == "out_of_memory" and e.value.code == "redis_out_of_memory"
            assert e.value.status_code == 503 and e.value.retry_after == 10
            assert "maxmemory" in str(e.value) and "used memory > 'maxmemory'" in e.value.detail
        await storage.client.config_set("maxmemory", 0)
        redis_server.stop()
        with pytest.raises(RedisUnavailable) as e:
            await sink.append("prod", source="server", payload_id="p", events=b"[1]", now_ms=1)
        assert e.value.condition == "unreachable" and str(e.value) == "Redis is unreachable (storing events)"

    caplog.set_level(logging.WARNING, "t.redis")
    scenario(redis_server, body)
    lines = [r.getMessage() for r in caplog.records if r.name == "t.redis"]
    assert len(lines) == 2, lines  # one per kind of trouble, not one per post
    assert "out of memory" in lines[0] and "unreachable" in lines[1]
