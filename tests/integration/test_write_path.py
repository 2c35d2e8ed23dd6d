"""The atomic write path against a real redis-server: versions, conflicts, audit, import, keys."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relay.errors import ConflictError, NotFoundError, ValidationError
from relay.store.plan import confirmed
from relay.wire import codec
from tests.integration.helpers import new_env, run_async, simple_flag, storage_for
from tests.integration.redis_server import RedisServer


def test_versions_audit_and_change_messages(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(redis_server.url)
        pubsub = admin.storage.pubsub()
        await pubsub.subscribe("relay:prod:changes")
        first = await admin.put_item("prod", "flag", simple_flag("checkout"), comment="launch")
        assert first.items[0]["version"] == 1 and first.data_versions == [1]
        toggled = await admin.toggle("prod", "checkout", False, comment="incident 7")
        assert toggled.items[0] == {**first.items[0], "version": 2, "on": False}
        assert (await admin.toggle("prod", "checkout", False)).data_versions == []  # already off: no write
        await admin.delete_item("prod", "flag", "checkout")
        recreated = await admin.put_item("prod", "flag", simple_flag("checkout"))
        assert recreated.items[0]["version"] == 4  # continues after the tombstone
        messages = []
        while len(messages) < 4:
            m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
            if m:
                messages.append(codec.loads(m["data"]))
        assert [m["version"] for m in messages] == [1, 2, 3, 4]
        assert messages[1]["item"]["on"] is False and messages[1]["key"] == "checkout"
        assert messages[2]["item"] == {"key": "checkout", "version": 3, "deleted": True}
        audit = await admin.audit("prod", key="checkout")
        assert [e["action"] for e in audit] == ["create", "delete", "toggle", "create"]
        toggle = audit[2]
        assert toggle["actor"] == "tester" and toggle["comment"] == "incident 7"
        assert codec.loads(toggle["before"])["on"] is True and codec.loads(toggle["after"])["on"] is False
        await pubsub.aclose()

    run_async(scenario())


def test_two_writers_with_the_same_expected_version_exactly_one_wins(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(redis_server.url)
        await admin.put_item("prod", "flag", simple_flag("f"))
        writers = [
            admin.put_item("prod", "flag", simple_flag("f", salt=f"writer-{i}"), expected_version=1) for i in range(8)
        ]
        results = await asyncio.gather(*writers, return_exceptions=True)
        wins = [r for r in results if not isinstance(r, BaseException)]
        losses = [r for r in results if isinstance(r, ConflictError)]
        assert len(wins) == 1 and len(losses) == 7
        stored = await admin.get_item("prod", "flag", "f")
        assert stored["version"] == 2 and stored["salt"] == wins[0].items[0]["salt"]
        assert len(await admin.audit("prod", key="f")) == 2

    run_async(scenario())


def test_import_is_all_or_nothing_and_names_the_bad_item(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(redis_server.url)
        doc: dict[str, Any] = {"flags": {f"flag-{i}": simple_flag(f"flag-{i}") for i in range(1000)}, "segments": {}}
        doc["flags"]["flag-613"]["rules"] = [
            {"variation": 0, "clauses": [{"attribute": "a", "op": "equalz", "values": []}]}
        ]
        with pytest.raises(ValidationError) as e:  # strict: what would otherwise be a warning refuses it all
            await admin.import_items("prod", doc, strict=True)
        assert str(e.value) == (
            'flags.flag-613.rules[0].clauses[0].op: unknown operator "equalz": it matches no value, as in '
            "LaunchDarkly's SDKs; strict writes refuse this (other writes accept it with a warning)"
        )
        doc["flags"]["flag-614"]["on"] = "yes"
        with pytest.raises(ValidationError) as e:  # what the SDKs refuse refuses it all, strict or not
            await admin.import_items("prod", doc)
        assert str(e.value) == 'flags.flag-614.on: expected a boolean, got the string "yes"'
        doc["flags"]["flag-614"]["on"] = True
        assert await admin.storage.all_items("prod", "flag") == {}
        assert (await admin.storage.versions(["prod"]))["prod"] == 0
        del doc["flags"]["flag-613"]["rules"]
        result = await admin.import_items("prod", doc)
        assert len(result.data_versions) == 1000 and result.data_versions[-1] == 1000
        assert len(await admin.list_items("prod", "flag")) == 1000
        # --replace deletes what the document no longer has, once that is confirmed
        small = {"flags": {"flag-1": simple_flag("flag-1")}}
        with pytest.raises(ValidationError, match=r"would delete 999 items .* not confirmed; nothing written"):
            await admin.import_items("prod", small, replace_all=True)
        assert len(await admin.list_items("prod", "flag")) == 1000
        await admin.import_items("prod", small, replace_all=True, confirm=confirmed)
        assert list(await admin.list_items("prod", "flag")) == ["flag-1"]

    run_async(scenario())


def test_invalid_and_unknown_input_writes_nothing(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(redis_server.url)
        with pytest.raises(ValidationError, match=r"^flags.f.fallthrough.variation: variation index 5 is out of range"):
            await admin.put_item("prod", "flag", simple_flag("f", fallthrough={"variation": 5}), strict=True)
        with pytest.raises(NotFoundError, match='unknown environment "nope" \\(known: prod\\)'):
            await admin.put_item("nope", "flag", simple_flag("f"))
        with pytest.raises(NotFoundError):
            await admin.toggle("prod", "missing", True)
        with pytest.raises(ConflictError, match="is at version 0, not 3"):
            await admin.put_item("prod", "flag", simple_flag("f"), expected_version=3)
        assert (await admin.storage.versions(["prod"]))["prod"] == 0
        assert await admin.audit("prod", key="f") == []

    run_async(scenario())


def test_environment_keys_are_stored_hashed_and_rotate_with_grace(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        now = [1_000_000.0]
        admin, secrets = await new_env(redis_server.url)
        admin.clock = lambda: now[0]
        dump = b"".join(
            [v for k in await admin.storage.client.keys("*") if (await admin.storage.client.type(k)) == b"hash"
             for v in (await admin.storage.client.hgetall(k)).values()]
        )  # fmt: skip
        assert secrets["sdk_key"].encode() not in dump and secrets["mobile_key"].encode() not in dump
        assert secrets["client_side_id"].encode() in dump  # public by design
        new_key = await admin.rotate_key("prod", "sdk", grace_seconds=60)
        env = await admin.environment("prod")
        at = int(now[0] * 1000)
        assert env.accepts("sdk", new_key, at) and env.accepts("sdk", secrets["sdk_key"], at + 59_000)
        assert not env.accepts("sdk", secrets["sdk_key"], at + 61_000)
        assert not env.accepts("sdk", secrets["mobile_key"], at) and env.accepts("mobile", secrets["mobile_key"], at)
        with pytest.raises(ConflictError):
            await admin.create_environment("prod")

    run_async(scenario())


def test_storage_reports_unreachable_redis_with_the_password_masked() -> None:
    from relay.store.storage import unavailable

    async def scenario() -> None:
        storage = storage_for("redis://:hunter2@127.0.0.1:1/0")
        try:
            await storage.ping()
        except Exception as e:
            message = str(unavailable(e, "redis://:hunter2@127.0.0.1:1/0"))
            assert "hunter2" not in message and "redis://:****@127.0.0.1:1/0" in message
        else:
            raise AssertionError("connected to a closed port")
        finally:
            await storage.close()

    run_async(scenario())


def test_audit_fields_say_how_the_writer_was_established(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(redis_server.url)
        admin.audit_fields = {"via": "api", "token": "tok_0123456789ab"}
        await admin.put_item("prod", "flag", simple_flag("f"))
        await admin.rotate_key("prod", "mobile", 0)
        entries = await admin.audit("prod")
        assert [e["action"] for e in entries] == ["rotate-mobile-key", "create", "env-create"]
        for e in entries[:2]:
            assert e["via"] == "api" and e["token"] == "tok_0123456789ab" and e["actor"] == "tester"
        assert "via" not in entries[2]  # written before: no such field

    run_async(scenario())
