"""Fixtures every test package may use: a real redis-server on a free port (never a mock)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.redis_server import RedisServer


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
