from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.helpers import demo_environment
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess


@pytest.fixture(scope="module")
def demo_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RelayProcess, RedisServer, dict[str, str]]]:
    """One Redis, the demo environment ("prod") and one relay node, shared by a module's tests."""
    tmp = tmp_path_factory.mktemp("node")
    redis = RedisServer(tmp / "redis").start()
    secrets = demo_environment(redis.url)
    relay = RelayProcess(redis.url, tmp / "relay").start()
    yield relay, redis, secrets
    relay.stop()
    redis.stop()
