"""relay.store.storage against a real redis-server: the key layout, the one write script (all or
nothing, a data version and an audit entry per item, the change message), loading, environments,
epochs (SDK events: tests/store/test_events.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from relay.errors import ConflictError
from relay.store.storage import ItemWrite, Storage
from relay.wire import codec
from tests.integration.helpers import run_async, storage_for
from tests.integration.redis_server import RedisServer


def scenario(redis: RedisServer, body: Callable[[Storage], Awaitable[None]]) -> None:
    run_async(body(storage_for(redis.url)))


def item_write(kind: str, key: str, seen: int, version: int, action: str = "create", **fields: Any) -> ItemWrite:
    item = codec.dumps({"key": key, "version": version, **fields})
    tail = b',"kind":"' + kind.encode() + b'","key":"' + key.encode() + b'","time":5,"item":' + item + b"}"
    return ItemWrite(kind, key, seen, item, action, b"", tail)


async def subscribed(storage: Storage, channel: str) -> Any:
    pubsub = storage.pubsub()
    await pubsub.subscribe(channel)
    while (await storage.client.pubsub_numsub(channel))[0][1] < 1:  # Redis has taken the SUBSCRIBE
        await asyncio.sleep(0.01)
    return pubsub


async def messages(pubsub: Any, wait: float = 0.3) -> list[bytes]:
    """Every message that arrives within `wait` seconds (a read may return None for the ignored
    subscribe confirmation, so the whole window is read)."""
    out: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + wait
    while asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(timeout=0.02)
        if message is not None:
            out.append(message["data"])
    return out


def test_the_key_layout(redis_server: RedisServer) -> None:
    async def body(default: Storage) -> None:
        storage = Storage(default.client, "pfx")
        assert storage.key("prod", "flags") == "pfx:prod:flags"
        assert storage.environments_key == "pfx:environments"
        assert storage.environments_channel == "pfx:@environments"  # no environment's, and outside the pattern
        assert storage.changes_pattern == "pfx:*:changes"
        assert storage.env_of_channel("pfx:environments:changes") == "environments"  # (one made before it was reserved)
        assert storage.env_of_channel("pfx:prod:changes") == "prod"
        assert storage.env_of_channel("pfx:my.env-1:changes") == "my.env-1"
        assert storage.env_of_channel(storage.environments_channel) is None

    scenario(redis_server, body)


def test_a_write_stores_audits_and_announces_each_item_at_its_own_data_version(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        pubsub = await subscribed(storage, "relay:prod:changes")
        flag, seg = item_write("flag", "a", -1, 1, on=True), item_write("segment", "s", -1, 1, included=["u"])
        versions = await storage.write("prod", [flag, seg], actor="ann", comment="first", now_ms=1234)
        assert versions == [1, 2]
        assert await messages(pubsub) == [b'{"version":1' + flag.message_tail, b'{"version":2' + seg.message_tail]
        assert await storage.items("prod", "flag", ["a", "missing"]) == {"a": flag.item_json, "missing": None}
        assert await storage.all_items("prod", "segment") == {"s": seg.item_json}
        assert await storage.versions(["prod", "other"]) == {"prod": 2, "other": 0}
        audit = await storage.audit("prod")  # newest first
        assert [(e["version"], e["kind"], e["key"], e["action"]) for e in audit] == [
            ("2", "segment", "s", "create"),
            ("1", "flag", "a", "create"),
        ]
        assert {(e["actor"], e["comment"], e["time"], e["before"]) for e in audit} == {("ann", "first", "1234", "")}
        assert audit[1]["after"] == flag.item_json.decode()
        await pubsub.aclose()

    scenario(redis_server, body)


def test_a_write_with_one_stale_item_writes_nothing(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        await storage.write("prod", [item_write("flag", "a", -1, 1)], actor="t", comment="", now_ms=1)
        pubsub = await subscribed(storage, "relay:prod:changes")
        fresh, stale = item_write("flag", "b", -1, 1), item_write("flag", "a", -1, 1)  # "a" is at 1, not absent
        with pytest.raises(ConflictError, match='"a" changed meanwhile: it is now at version 1'):
            await storage.write("prod", [fresh, stale], actor="t", comment="", now_ms=2)
        assert await storage.items("prod", "flag", ["b"]) == {"b": None}
        assert await storage.versions(["prod"]) == {"prod": 1}
        assert len(await storage.audit("prod")) == 1 and await messages(pubsub) == []
        update = item_write("flag", "a", 1, 2, action="update")  # the version it read: taken
        assert await storage.write("prod", [update], actor="t", comment="", now_ms=3) == [2]
        await pubsub.aclose()

    scenario(redis_server, body)


def test_load_reads_everything_of_an_environment_at_once(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        assert await storage.load("prod") == ({}, {}, 0, None)
        a, s = item_write("flag", "a", -1, 1), item_write("segment", "s", -1, 1)
        await storage.write("prod", [a, s], actor="t", comment="", now_ms=1)
        assert await storage.load("prod") == ({"a": a.item_json}, {"s": s.item_json}, 2, None)
        await storage.new_epoch("prod", "e1")
        assert (await storage.load("prod"))[3] == "e1"

    scenario(redis_server, body)


def test_a_new_epoch_is_announced_at_the_current_data_version(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        await storage.write("prod", [item_write("flag", "a", -1, 1)], actor="t", comment="", now_ms=1)
        pubsub = await subscribed(storage, "relay:prod:changes")
        assert await storage.new_epoch("prod", "0123abcd") == 1
        assert await messages(pubsub) == [b'{"version":1,"kind":"epoch","key":"0123abcd"}']
        assert await storage.epochs(["prod", "dev"]) == {"prod": "0123abcd", "dev": None}
        assert await storage.epochs([]) == {}
        await pubsub.aclose()

    scenario(redis_server, body)


def test_environments_are_created_once_and_replaced_only_as_read(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        pubsub = await subscribed(storage, storage.environments_channel)
        assert await storage.create_environment("prod", b'{"key":"prod","n":1}')
        assert not await storage.create_environment("prod", b'{"key":"prod","n":2}')
        assert await storage.environment("prod") == b'{"key":"prod","n":1}'
        with pytest.raises(ConflictError, match='environment "prod" changed meanwhile'):
            await storage.replace_environment("prod", b'{"key":"prod","n":0}', b'{"key":"prod","n":3}')
        await storage.replace_environment("prod", b'{"key":"prod","n":1}', b'{"key":"prod","n":4}')
        assert await storage.environments() == {"prod": b'{"key":"prod","n":4}'}
        assert await storage.environment("dev") is None
        assert await messages(pubsub) == [b'{"key":"prod","n":1}', b'{"key":"prod","n":4}']
        await pubsub.aclose()

    scenario(redis_server, body)


def test_environment_audit_entries_and_reading_since_a_time(redis_server: RedisServer) -> None:
    async def body(storage: Storage) -> None:
        await storage.audit_environment("prod", actor="ann", action="env-create", comment="new", now_ms=10)
        await asyncio.sleep(0.01)
        seconds, micros = await storage.client.time()  # the clock stream IDs are made from
        cutoff = seconds * 1000 + micros // 1000
        await asyncio.sleep(0.01)
        await storage.audit_environment("prod", actor="bob", action="rotate-sdk-key", comment="", now_ms=20)
        entries = await storage.audit("prod")
        assert [(e["actor"], e["action"], e["kind"], e["key"], e["time"]) for e in entries] == [
            ("bob", "rotate-sdk-key", "environment", "prod", "20"),
            ("ann", "env-create", "environment", "prod", "10"),
        ]
        assert [e["actor"] for e in await storage.audit("prod", since_ms=cutoff)] == ["bob"]
        assert [e["actor"] for e in await storage.audit("prod", count=1)] == ["bob"]

    scenario(redis_server, body)
