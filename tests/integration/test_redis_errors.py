"""The CLI names the Redis condition it met, each with its own message (exit code 5 for all), against
real redis-servers: out of memory, a read-only replica, a missing or wrong password, nothing listening."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result

from relay.cli import main
from tests.integration.helpers import demo_environment
from tests.integration.redis_server import RedisServer, free_port

UNREACHABLE = "Redis unreachable at"


def _relay(args: list[str], url: str, **env: str) -> Result:
    return CliRunner().invoke(main, args, env={"RELAY_REDIS_URL": url, "RELAY_ENV": "prod", **env})


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[RedisServer]]:
    """Servers a test starts (appended to this list), all stopped at its end."""
    started: list[RedisServer] = []
    yield started
    for server in started:
        server.stop()


def test_out_of_memory_is_named(tmp_path: Path, servers: list[RedisServer], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    server = RedisServer(tmp_path / "full").start()
    servers.append(server)
    demo_environment(server.url)
    client = redis.Redis.from_url(server.url)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1mb")
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        for i in range(10_000):  # fill it up
            client.set(f"filler:{i}", "x" * 1000)
    client.close()
    toggled = _relay(["flags", "toggle", "checkout-kill-switch", "--off"], server.url)
    assert toggled.exit_code == 5, toggled.output
    assert "is out of memory" in toggled.output and "maxmemory" in toggled.output
    assert UNREACHABLE not in toggled.output
    created = _relay(["env", "create", "staging"], server.url)
    assert created.exit_code == 5 and "is out of memory" in created.output
    assert _relay(["flags", "list"], server.url).exit_code == 0  # reads still work


def test_a_read_only_replica_is_named(
    tmp_path: Path, servers: list[RedisServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    primary = RedisServer(tmp_path / "primary").start()
    servers.append(primary)
    demo_environment(primary.url)
    replica = RedisServer(tmp_path / "replica", args=["--replicaof", "127.0.0.1", str(primary.port)]).start()
    servers.append(replica)
    client = redis.Redis.from_url(replica.url)
    deadline = time.monotonic() + 10
    while not client.hexists("relay:environments", "prod"):  # replicated
        assert time.monotonic() < deadline, "the replica never synced"
        time.sleep(0.05)
    client.close()
    toggled = _relay(["flags", "toggle", "checkout-kill-switch", "--off"], replica.url)
    assert toggled.exit_code == 5, toggled.output
    assert "is a read-only replica" in toggled.output and "primary" in toggled.output
    assert UNREACHABLE not in toggled.output


def test_a_missing_or_wrong_password_is_named(
    tmp_path: Path, servers: list[RedisServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    server = RedisServer(tmp_path / "locked", password="s3cret-pass").start()
    servers.append(server)
    none = _relay(["env", "list"], server.url)
    assert none.exit_code == 5 and "requires a password and none was given" in none.output, none.output
    wrong = _relay(["env", "list"], server.url, RELAY_REDIS_PASSWORD="not-it")
    assert wrong.exit_code == 5 and "refused the password" in wrong.output, wrong.output
    in_url = _relay(["env", "list"], server.url.replace("redis://", "redis://:not-it@"))
    assert in_url.exit_code == 5 and "refused the password" in in_url.output
    assert "not-it" not in in_url.output  # the URL's password masked
    for result in (none, wrong, in_url):
        assert UNREACHABLE not in result.output
    assert _relay(["env", "list"], server.url, RELAY_REDIS_PASSWORD="s3cret-pass").exit_code == 0


def test_nothing_listening_is_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _relay(["flags", "list"], f"redis://127.0.0.1:{free_port()}/0")
    assert result.exit_code == 5 and UNREACHABLE in result.output, result.output
    for condition in ("out of memory", "read-only", "password"):
        assert condition not in result.output
