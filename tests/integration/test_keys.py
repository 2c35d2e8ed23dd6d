"""Environment and item keys: whole-string patterns (no key ending in a newline), names relay's own
Redis keys use are refused, and no environment's channel is the environments channel."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from relay.access.environments import (
    RESERVED_ENV_KEYS,
    Credential,
    Environment,
    hash_key,
    new_client_side_id,
    new_sdk_key,
)
from relay.cli import main
from relay.errors import ValidationError
from relay.store.writes import WritePath
from relay.wire import codec
from tests.integration.helpers import run_async, simple_flag, storage_for
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess
from tests.integration.sse import EventStream


def _relay(args: list[str], url: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, args, env={"RELAY_REDIS_URL": url, "RELAY_ACTOR": "ops"}, input=stdin)


def test_reserved_environment_names_are_refused_with_the_reason(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert {"environments", "tokens"} <= RESERVED_ENV_KEYS
    for name in ("environments", "tokens"):
        result = _relay(["env", "create", name], redis_server.url)
        assert result.exit_code == 2, result.output
        assert f'"{name}" is reserved' in result.output and "choose another key" in result.output
    assert json.loads(_relay(["env", "list", "--json"], redis_server.url).output) == []
    assert _relay(["env", "create", "environments-eu"], redis_server.url).exit_code == 0  # only the exact names


def test_keys_ending_in_a_newline_are_refused_for_environments_and_items(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = redis_server.url
    refused = _relay(["env", "create", "prod\n"], url)
    assert refused.exit_code == 2 and 'got "prod\\n"' in refused.output, refused.output
    assert _relay(["env", "create", "prod"], url).exit_code == 0
    for kind in ("flags", "segments"):
        item = {**simple_flag("a\n")} if kind == "flags" else {"key": "a\n", "included": ["ann"]}
        result = _relay([kind, "set", "-", "--env", "prod"], url, stdin=json.dumps(item))
        assert result.exit_code == 2 and 'got "a\\n"' in result.output, result.output

    async def direct() -> None:
        admin = WritePath(storage_for(url), actor="test")
        with pytest.raises(ValidationError):
            await admin.create_environment("staging\n")
        with pytest.raises(ValidationError):
            await admin.import_items("prod", {"flags": {"b\n": {**simple_flag("b\n"), "version": 1}}})

    run_async(direct())
    listed = _relay(["env", "list", "--json"], url).output
    assert [e["key"] for e in json.loads(listed)] == ["prod"]
    assert json.loads(_relay(["flags", "list", "--env", "prod", "--json"], url).output) == {}


def test_an_environment_named_environments_gets_its_changes_at_once(redis_server: RedisServer, tmp_path: Path) -> None:
    # One made before the name was reserved (written to Redis directly here). Its change channel,
    # relay:environments:changes, used to be the environments channel: every write there was read
    # as a malformed environment record, and reached SDKs only at the periodic check (5-8 s).
    sdk_key = new_sdk_key()

    async def setup() -> None:
        storage = storage_for(redis_server.url)
        record = Environment("environments", "environments", 1, new_client_side_id(), (Credential(hash_key(sdk_key)),))
        assert await storage.create_environment("environments", codec.dumps(record.to_dict()), now_ms=1)
        await WritePath(storage, actor="test").put_item("environments", "flag", simple_flag("switch"))

    run_async(setup())
    relay = RelayProcess(redis_server.url, tmp_path / "relay", version_check_interval="30").start()
    try:

        async def scenario() -> float:
            async with httpx.AsyncClient(timeout=None) as client:
                request = client.build_request("GET", f"{relay.url}/all", headers={"Authorization": sdk_key})
                response = await client.send(request, stream=True)
                assert response.status_code == 200
                stream = EventStream(response)
                assert (await stream.next())[0] == "put"
                admin = WritePath(storage_for(redis_server.url), actor="test")
                started = time.monotonic()
                await admin.toggle("environments", "switch", False)
                while True:
                    name, data = await stream.next(timeout=5)
                    if name == "patch":
                        assert data["path"] == "/flags/switch" and data["data"]["on"] is False
                        return time.monotonic() - started

        took = run_async(scenario())
        assert took < 0.5, took
        asyncio.run(asyncio.sleep(0.2))  # let the node log whatever it would
        assert "malformed environment record" not in relay.log.read_text()
    finally:
        relay.stop()
