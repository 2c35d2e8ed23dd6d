"""A deleted environment leaves every node: its streams end, its keys stop working, and a node that
missed the announcement drops it at its next version check (not merely "missing", which it keeps)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import redis

from relay.store.plan import confirmed
from tests.integration.helpers import demo_environment, new_env, run_async
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess


def _stream_until_closed(url: str, key: str, ended: threading.Event) -> None:
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=None)) as http,
        http.stream("GET", f"{url}/all", headers={"Authorization": key}) as response,
    ):
        assert response.status_code == 200
        for _ in response.iter_raw():
            pass
    ended.set()


def _status_envs(url: str) -> set[str]:
    return set(httpx.get(f"{url}/status").json()["environments"])


def test_a_deleted_environment_ends_its_streams_and_its_keys_stop_working(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    secrets = demo_environment(redis_server.url, "prod")
    relay = RelayProcess(redis_server.url, tmp_path / "relay").start()
    try:
        ended = threading.Event()
        reader = threading.Thread(target=_stream_until_closed, args=(relay.url, secrets["sdk_key"], ended))
        reader.start()
        time.sleep(0.5)  # the stream is open and has its put
        assert not ended.is_set()

        async def delete() -> None:
            writer, _ = await new_env(redis_server.url, "other")
            await writer.delete_environment("prod", confirm=confirmed)

        started = time.monotonic()
        run_async(delete())
        assert ended.wait(5), "the deleted environment's stream was not ended"
        assert time.monotonic() - started < 1.0
        reader.join(5)
        auth = {"Authorization": secrets["sdk_key"]}
        assert httpx.get(f"{relay.url}/sdk/latest-all", headers=auth).status_code == 401
        assert httpx.get(f"{relay.url}/sdk/evalx/{secrets['client_side_id']}/contexts/eyJrZXkiOiJ1In0").status_code in (
            401,
            404,
        )
        assert "prod" not in _status_envs(relay.url)
        # Created again, it starts afresh (Redis's data version restarts too).
        demo_environment(redis_server.url, "prod")
        deadline = time.monotonic() + 5
        while "prod" not in _status_envs(relay.url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(f"{relay.url}/status").json()["environments"]["prod"]["diverged"] is None
    finally:
        relay.stop()


def test_a_node_that_missed_the_announcement_drops_it_at_its_version_check(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    demo_environment(redis_server.url, "prod")
    demo_environment(redis_server.url, "lost")
    relay = RelayProcess(redis_server.url, tmp_path / "relay", version_check_interval="0.2").start()
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert _status_envs(relay.url) == {"prod", "lost"}
        # As the delete script leaves Redis, without its PUBLISH (a node that missed it) ...
        client.hdel("relay:environments", "prod")
        client.hset("relay:environments:deleted", "prod", "1")
        # ... and an environment that vanished with no deletion (Redis lost it): kept, diverged.
        client.hdel("relay:environments", "lost")
        deadline = time.monotonic() + 5
        while "prod" in _status_envs(relay.url) and time.monotonic() < deadline:
            time.sleep(0.05)
        status = httpx.get(f"{relay.url}/status").json()["environments"]
        assert "prod" not in status
        assert status["lost"]["diverged"]
    finally:
        client.close()
        relay.stop()
