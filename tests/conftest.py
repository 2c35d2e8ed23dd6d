"""Fixtures every test package may use: a real redis-server on a free port (never a mock)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.redis_server import RedisServer


@pytest.fixture(scope="session", autouse=True)
def relay_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An embedded Redis a test starts without naming its directory lives here, never in the user's
    own data folder (~/.local/share/relay)."""
    home = tmp_path_factory.mktemp("relay-home")
    previous = os.environ.get("RELAY_HOME")
    os.environ["RELAY_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("RELAY_HOME", None)
    else:
        os.environ["RELAY_HOME"] = previous


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free port, for this test alone."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """The same, with an append-only file: it comes back with its data after a restart."""
    server = RedisServer(tmp_path / "redis-aof", persistent=True).start()
    yield server
    server.stop()
