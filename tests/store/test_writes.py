"""relay.store.writes.WritePath against a real redis-server: strict validation before anything is
written, relay-owned item versions, optimistic concurrency, all-or-nothing imports, key rotation
and the size limit it is built with."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from relay.access.environments import Environment
from relay.access.sealing import Sealer
from relay.config import Settings
from relay.errors import ConflictError, NotFoundError, ValidationError
from relay.store.plan import confirmed
from relay.store.writes import WritePath
from relay.wire import codec
from tests.integration.helpers import run_async, simple_flag, storage_for
from tests.integration.redis_server import RedisServer

SECRET = "a-secret-key-of-at-least-32-characters!"


def scenario(redis: RedisServer, body: Callable[[WritePath], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        writer = WritePath(storage_for(redis.url), actor="ann", clock=lambda: 1_700_000_000.0, **options)
        await writer.create_environment("prod")
        await body(writer)

    run_async(main())


async def stored(writer: WritePath, env: str = "prod") -> Environment:
    raw = await writer.storage.environment(env)
    assert raw is not None
    return Environment.from_dict(codec.loads(raw))


def test_a_new_environment_keeps_only_hashes_of_its_keys(redis_server: RedisServer) -> None:
    async def body(writer: WritePath) -> None:
        env, secrets = await writer.create_environment("dev", "Development")
        assert secrets["sdk_key"].startswith("sdk-") and secrets["mobile_key"].startswith("mob-")
        assert secrets["client_side_id"] == env.client_side_id and env.name == "Development"
        raw = await writer.storage.environment("dev")
        assert raw is not None and secrets["sdk_key"].encode() not in raw and secrets["mobile_key"].encode() not in raw
        held = await stored(writer, "dev")
        assert held.accepts("sdk", secrets["sdk_key"], 1) and held.accepts("mobile", secrets["mobile_key"], 1)
        assert held.created_ms == 1_700_000_000_000 and held.sdk_keys[0].sealed is None
        with pytest.raises(ConflictError, match='environment "dev" already exists'):
            await writer.create_environment("dev")
        assert [e["action"] for e in await writer.audit("dev")] == ["env-create"]
        assert [e.key for e in await writer.list_environments()] == ["dev", "prod"]
        with pytest.raises(NotFoundError, match=r'unknown environment "nope" \(known: dev, prod\)'):
            await writer.environment("nope")

    scenario(redis_server, body)


def test_secure_mode_needs_the_secret_that_seals_sdk_keys(redis_server: RedisServer) -> None:
    async def body(writer: WritePath) -> None:
        with pytest.raises(ValidationError, match="RELAY_SECRET_KEY"):
            await writer.create_environment("dev", secure_mode=True)
        sealing = WritePath(writer.storage, actor="ann", sealer=Sealer(SECRET))
        env, secrets = await sealing.create_environment("dev", secure_mode=True)
        assert env.secure_mode and env.sdk_keys[0].sealed is not None
        assert secrets["sdk_key"].encode() not in (await writer.storage.environment("dev") or b"")

    scenario(redis_server, body)


def test_relay_numbers_each_version_of_an_item(redis_server: RedisServer) -> None:
    async def body(writer: WritePath) -> None:
        first = await writer.put_item("prod", "flag", simple_flag("a", version=99))
        assert first.items[0]["version"] == 1 and first.data_versions == [1]
        second = await writer.put_item("prod", "flag", {**simple_flag("a"), "on": False}, expected_version=1)
        assert second.items[0]["version"] == 2 and second.data_versions == [2]
        assert (await writer.get_item("prod", "flag", "a"))["on"] is False
        with pytest.raises(ConflictError, match='flag "a" is at version 2, not 1; nothing written'):
            await writer.put_item("prod", "flag", simple_flag("a"), expected_version=1)
        assert (await writer.get_item("prod", "flag", "a"))["version"] == 2
        actions = [(e["action"], e["version"]) for e in await writer.audit("prod", key="a")]
        assert actions == [("update", "2"), ("create", "1")]

    scenario(redis_server, body)


@pytest.mark.parametrize(
    ("data", "key", "path"),
    [
        ([1, 2], None, "flag"),
        ({"on": True}, None, "flag.key"),
        (simple_flag("a"), "b", "flag.key"),
        ({**simple_flag("a"), "deleted": True}, None, "flags.a.deleted"),
        ({**simple_flag("a"), "variations": "no"}, None, "flags.a.variations"),
    ],
    ids=["not-an-object", "no-key", "key-mismatch", "a-tombstone", "bad-field"],
)
def test_bad_items_are_refused_before_anything_is_read(
    redis_server: RedisServer, data: Any, key: str | None, path: str
) -> None:
    async def body(writer: WritePath) -> None:
        with pytest.raises(ValidationError) as refused:
            await writer.put_item("prod", "flag", data, key=key)
        assert refused.value.path == path
        assert await writer.list_items("prod", "flag") == {}

    scenario(redis_server, body)


def test_the_size_limit_is_the_one_the_write_path_was_built_with(redis_server: RedisServer) -> None:
    flag = simple_flag("big", description="x" * 300)

    async def body(writer: WritePath) -> None:
        assert writer.max_item_bytes == Settings().max_item_bytes  # the setting's default
        small = WritePath(writer.storage, actor="ann", max_item_bytes=200)
        with pytest.raises(ValidationError, match=r"over max_item_bytes \(200\)"):
            await small.put_item("prod", "flag", flag)
        with pytest.raises(ValidationError, match=r"over max_item_bytes \(200\)"):
            await small.import_items("prod", {"flags": {"big": flag}})
        assert await writer.list_items("prod", "flag") == {}
        assert (await writer.put_item("prod", "flag", flag)).data_versions == [1]

    scenario(redis_server, body)


def test_the_kill_switch_writes_only_a_change(redis_server: RedisServer) -> None:
    async def body(writer: WritePath) -> None:
        await writer.put_item("prod", "flag", simple_flag("a"))
        assert (await writer.toggle("prod", "a", True)).data_versions == []  # already on
        off = await writer.toggle("prod", "a", False, comment="incident")
        assert off.items[0]["on"] is False and off.data_versions == [2]
        entry = (await writer.audit("prod", key="a", limit=1))[0]
        assert (entry["action"], entry["comment"], entry["actor"]) == ("toggle", "incident", "ann")
        with pytest.raises(NotFoundError, match='no flag "nope" in environment "prod"'):
            await writer.toggle("prod", "nope", False)

    scenario(redis_server, body)


def test_a_delete_leaves_a_versioned_tombstone(redis_server: RedisServer) -> None:
    async def body(writer: WritePath) -> None:
        await writer.put_item("prod", "segment", {"key": "s", "included": ["u"]})
        deleted = await writer.delete_item("prod", "segment", "s")
        assert deleted.items == [{"key": "s", "version": 2, "deleted": True}]
        raw = (await writer.storage.items("prod", "segment", ["s"]))["s"]
        assert raw is not None and codec.loads(raw) == {"key": "s", "version": 2, "deleted": True}
        assert await writer.list_items("prod", "segment") == {}
        with pytest.raises(NotFoundError):
            await writer.get_item("prod", "segment", "s")
        with pytest.raises(NotFoundError):
            await writer.delete_item("prod", "segment", "s")
        again = await writer.put_item("prod", "segment", {"key": "s"})
        assert again.items[0]["version"] == 3  # back, above its tombstone

    scenario(redis_server, body)


def test_an_import_is_all_or_nothing_and_can_replace_everything(redis_server: RedisServer) -> None:
    async def body(writer: WritePath) -> None:
        await writer.put_item("prod", "flag", simple_flag("old"))
        bad = {"flags": {"a": simple_flag("a"), "b": {**simple_flag("b"), "fallthrough": "nope"}}}
        with pytest.raises(ValidationError):
            await writer.import_items("prod", bad)
        assert list(await writer.list_items("prod", "flag")) == ["old"]
        doc = {"flags": {"a": simple_flag("a"), "b": simple_flag("b")}, "segments": {"s": {"key": "s"}}}
        result = await writer.import_items("prod", doc, replace_all=True, confirm=confirmed)
        assert result.data_versions == [2, 3, 4, 5]  # one write: contiguous data versions
        assert list(await writer.list_items("prod", "flag")) == ["a", "b"]
        assert list(await writer.list_items("prod", "segment")) == ["s"]
        assert (await writer.import_items("prod", {"flags": {}}, replace_all=False)).data_versions == []
        exported = await writer.export("prod")
        assert set(exported["flags"]) == {"a", "b"} and set(exported["segments"]) == {"s"}

    scenario(redis_server, body)


def test_a_rotated_key_keeps_working_for_its_grace_period(redis_server: RedisServer) -> None:
    async def body(writer: WritePath) -> None:
        _, secrets = await writer.create_environment("dev")
        new_key = await writer.rotate_key("dev", "mobile", 60, comment="leaked")
        env = await stored(writer, "dev")
        now_ms = 1_700_000_000_000
        assert env.accepts("mobile", new_key, now_ms)
        assert env.accepts("mobile", secrets["mobile_key"], now_ms + 59_000)
        assert not env.accepts("mobile", secrets["mobile_key"], now_ms + 60_000)
        assert env.accepts("sdk", secrets["sdk_key"], now_ms + 10**9)  # the other kind untouched
        assert (await writer.audit("dev", limit=1))[0]["action"] == "rotate-mobile-key"

    scenario(redis_server, body)


def test_accepting_redis_data_starts_a_new_epoch(redis_server: RedisServer) -> None:
    async def body(writer: WritePath) -> None:
        await writer.put_item("prod", "flag", simple_flag("a"))
        # (Redis shows no lost data here, so the accept is forced: issue 16's rule, tested in
        # tests/integration/test_safe_operations.py.)
        assert (await writer.accept_redis_data("prod", force=True, comment="restored from backup")).data_version == 1
        epoch = (await writer.storage.epochs(["prod"]))["prod"]
        assert epoch is not None and len(epoch) == 16
        entry = (await writer.audit("prod", limit=1))[0]
        assert (entry["action"], entry["comment"]) == ("accept-redis-data", "restored from backup")
        await writer.accept_redis_data("prod", force=True)
        assert (await writer.storage.epochs(["prod"]))["prod"] != epoch
        assert (await writer.audit("prod", limit=1))[0]["comment"].startswith("epoch ")

    scenario(redis_server, body)


def test_each_write_announces_the_whole_item_with_its_time(redis_server: RedisServer) -> None:
    async def body(writer: WritePath) -> None:
        pubsub = writer.storage.pubsub()
        await pubsub.subscribe("relay:prod:changes")
        while (await writer.storage.client.pubsub_numsub("relay:prod:changes"))[0][1] < 1:
            await asyncio.sleep(0.01)
        written = await writer.put_item("prod", "flag", simple_flag("a"))
        message = None
        for _ in range(100):
            message = await pubsub.get_message(timeout=0.05)
            if message is not None:
                break
        assert message is not None
        assert codec.loads(message["data"]) == {
            "version": 1,
            "kind": "flag",
            "key": "a",
            "time": 1_700_000_000_000,
            "item": written.items[0],
        }
        await pubsub.aclose()

    scenario(redis_server, body)
