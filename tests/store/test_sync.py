"""A node's sync loop against a real redis-server: changes, gaps, lost messages, Redis restarts."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from relay.store.sync import Sync
from relay.wire import codec
from relay.wire.changes import Change
from tests.integration.helpers import eventually, new_env, run_async, simple_flag, storage_for
from tests.integration.redis_server import RedisServer


def _sync(url: str, **kwargs: float) -> tuple[Sync, list[Change]]:
    seen: list[Change] = []
    sync = Sync(storage_for(url), on_change=lambda env, changes: seen.extend(changes), **kwargs)  # type: ignore[arg-type]
    return sync, seen


def _flag_on(sync: Sync, env: str, key: str) -> bool | None:
    rs = sync.state.rulesets.get(env)
    flag = None if rs is None else rs.flags.get(key)
    return None if flag is None or flag.deleted else flag.on


def test_a_toggle_reaches_a_running_node(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(redis_server.url)
        await admin.put_item("prod", "flag", simple_flag("checkout"))
        sync, seen = _sync(redis_server.url)
        task = asyncio.create_task(sync.run())
        await asyncio.wait_for(sync.state.loaded.wait(), 5)
        assert _flag_on(sync, "prod", "checkout") is True and sync.state.rulesets["prod"].version == 1
        seen.clear()
        await admin.toggle("prod", "checkout", False)
        await eventually(lambda: _flag_on(sync, "prod", "checkout") is False, what="the toggle")
        assert [(c.key, c.version, c.item.on) for c in seen] == [("checkout", 2, False)]  # type: ignore[union-attr]
        assert sync.state.rulesets["prod"].snapshot.evaluate("checkout", None).reason.to_dict()["kind"] == "ERROR"
        await admin.delete_item("prod", "flag", "checkout")
        await eventually(lambda: _flag_on(sync, "prod", "checkout") is None, what="the delete")
        assert sync.state.resyncs == 1  # nothing but the first load
        task.cancel()

    run_async(scenario())


def test_a_gap_triggers_a_resync_reported_as_changes(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(redis_server.url)
        await admin.put_item("prod", "flag", simple_flag("a"))
        sync, seen = _sync(redis_server.url)
        task = asyncio.create_task(sync.run())
        await asyncio.wait_for(sync.state.loaded.wait(), 5)
        # A write whose message is lost: store it, then hide it by unsubscribing nothing but dropping
        # the publish (write directly), and announce a later version to expose the gap.
        client = admin.storage.client
        await client.hset("relay:prod:flags", "b", codec.dumps({**simple_flag("b"), "version": 1}))
        await client.incr("relay:prod:version")
        await client.set("relay:prod:version", 3)
        gap = {"version": 3, "kind": "flag", "key": "c", "item": {**simple_flag("c"), "version": 1}}
        await client.hset("relay:prod:flags", "c", codec.dumps(gap["item"]))
        seen.clear()
        await client.publish("relay:prod:changes", codec.dumps(gap))
        await eventually(lambda: sync.state.rulesets["prod"].version == 3, what="the resync")
        assert sorted(c.key for c in seen) == ["b", "c"]  # a patch per changed item, not a reload
        assert sync.state.resyncs == 2
        task.cancel()

    run_async(scenario())


def test_the_version_check_catches_a_silently_lost_message(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(redis_server.url)
        sync, seen = _sync(redis_server.url, version_check_interval=0.1)
        task = asyncio.create_task(sync.run())
        await asyncio.wait_for(sync.state.loaded.wait(), 5)
        client = admin.storage.client
        await client.hset("relay:prod:flags", "quiet", codec.dumps({**simple_flag("quiet"), "version": 1}))
        await client.incr("relay:prod:version")  # no PUBLISH: as if pub/sub dropped it
        await eventually(lambda: _flag_on(sync, "prod", "quiet") is True, what="the version check")
        assert [c.key for c in seen] == ["quiet"]
        task.cancel()

    run_async(scenario())


def test_new_environments_are_picked_up_without_a_restart(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(redis_server.url)
        sync, _ = _sync(redis_server.url)
        task = asyncio.create_task(sync.run())
        await asyncio.wait_for(sync.state.loaded.wait(), 5)
        await admin.create_environment("staging")
        await admin.put_item("staging", "flag", simple_flag("x"))
        await eventually(lambda: _flag_on(sync, "staging", "x") is True, what="the new environment")
        assert "staging" in sync.state.environments
        new_key = await admin.rotate_key("staging", "sdk", 0)
        await eventually(
            lambda: sync.state.environments["staging"].accepts("sdk", new_key, 2**62 // 2**20), what="the rotated key"
        )
        task.cancel()

    run_async(scenario())


def test_an_environment_record_changed_by_an_older_writer_is_applied_at_the_version_check(
    redis_server: RedisServer,
) -> None:
    # A writer of an older version announces records on the old channel (P:environments:changes),
    # which this version does not read: the periodic check still applies the record (a rotated key),
    # and a message on a channel of relay's own (P:tokens:changes) makes no environment of it.
    async def scenario() -> None:
        admin, _ = await new_env(redis_server.url)
        sync, _ = _sync(redis_server.url, version_check_interval=0.2)
        task = asyncio.create_task(sync.run())
        await asyncio.wait_for(sync.state.loaded.wait(), 5)
        client = admin.storage.client
        record = await admin.environment("prod")
        rotated = record.rotated("sdk", "sdk-from-an-older-writer", 0, 0)
        await client.hset("relay:environments", "prod", codec.dumps(rotated.to_dict()))
        await client.publish("relay:environments:changes", codec.dumps(rotated.to_dict()))
        await client.publish("relay:tokens:changes", b'{"id": "tok_000000000000"}')
        await eventually(
            lambda: sync.state.environments["prod"].accepts("sdk", "sdk-from-an-older-writer", 1), what="the record"
        )
        assert sorted(sync.state.rulesets) == ["prod"]  # no "environments", no "tokens"
        task.cancel()

    run_async(scenario())


def test_redis_killed_and_restarted_with_writes_meanwhile_converges(
    persistent_redis: RedisServer, tmp_path: Path
) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(persistent_redis.url)
        await admin.put_item("prod", "flag", simple_flag("a"))
        sync, _ = _sync(persistent_redis.url, reconnect_max_delay=0.2)
        task = asyncio.create_task(sync.run())
        await asyncio.wait_for(sync.state.loaded.wait(), 5)
        await admin.storage.close()

        persistent_redis.kill()
        await eventually(lambda: sync.state.rulesets["prod"].stale_since is not None, what="staleness")
        # Still serving the last ruleset while Redis is gone.
        assert _flag_on(sync, "prod", "a") is True and sync.state.status()["environments"]["prod"]["stale"]

        persistent_redis.start()  # same port, same data directory (AOF)
        writer, _ = await new_env(persistent_redis.url, env="other")
        await writer.toggle("prod", "a", False)
        for i in range(20):
            await writer.put_item("prod", "flag", simple_flag(f"n{i}"))
        await writer.delete_item("prod", "flag", "n3")
        await eventually(lambda: sync.state.rulesets["prod"].version == 23, timeout=15, what="convergence")
        rs = sync.state.rulesets["prod"]
        assert rs.stale_since is None and sync.state.connected
        assert _flag_on(sync, "prod", "a") is False and _flag_on(sync, "prod", "n3") is None
        assert sum(1 for f in rs.flags.values() if not f.deleted) == 20
        task.cancel()

    run_async(scenario())


def test_redis_frozen_then_resumed_catches_up(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(redis_server.url)
        sync, _ = _sync(redis_server.url, version_check_interval=0.2)
        task = asyncio.create_task(sync.run())
        await asyncio.wait_for(sync.state.loaded.wait(), 5)
        redis_server.signal(signal.SIGSTOP)
        await asyncio.sleep(0.5)
        redis_server.signal(signal.SIGCONT)
        await admin.put_item("prod", "flag", simple_flag("after"))
        await eventually(lambda: _flag_on(sync, "prod", "after") is True, what="catching up")
        task.cancel()

    run_async(scenario())
