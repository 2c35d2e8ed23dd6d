"""Redis Sentinel failover with relay nodes on `redis+sentinel://`: a primary, a replica and a
Sentinel on loopback; the primary is killed; the nodes follow the promoted replica, writes (WritePath
and the CLI) reach it, and open streams keep receiving changes."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
from click.testing import CliRunner

from relay.cli import main
from relay.store.embedded import find_redis_server
from relay.store.storage import RedisError
from relay.store.writes import WritePath
from tests.integration.helpers import demo_environment, storage_for
from tests.integration.redis_server import free_port
from tests.integration.relay_process import RelayProcess
from tests.integration.sse import EventStream

KILL_SWITCH = "checkout-kill-switch"


class Sentinels:
    """A primary, one replica and one Sentinel (quorum 1, short timeouts so failover takes seconds)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.primary_port, self.replica_port, self.sentinel_port = free_port(), free_port(), free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/mymaster"

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.dir / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen([find_redis_server(), *args], stdout=log, stderr=log)

    def start(self) -> Sentinels:
        self.dir.mkdir(parents=True, exist_ok=True)
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._spawn("primary", "--port", str(self.primary_port), "--dir", str(self.dir), *common)
        self._wait(self.primary_port, lambda c: c.ping())
        self._spawn("replica", "--port", str(self.replica_port), "--dir", str(self.dir), *common,
                    "--replicaof", "127.0.0.1", str(self.primary_port))  # fmt: skip
        self._wait(self.replica_port, lambda c: c.info("replication")["master_link_status"] == "up")
        conf = self.dir / "sentinel.conf"  # Sentinel rewrites its file: it must be writable
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor mymaster 127.0.0.1 {self.primary_port} 1\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
            "sentinel failover-timeout mymaster 3000\n"
        )
        self._spawn("sentinel", str(conf), "--sentinel")
        self._wait(self.sentinel_port, lambda c: len(c.sentinel_slaves("mymaster")) == 1)
        return self

    def _wait(self, port: int, check: Any, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with sync_redis.Redis(port=port, socket_timeout=1) as c:
                    if check(c):
                        return
            except (sync_redis.RedisError, KeyError):
                pass
            assert time.monotonic() < deadline, f"redis-server on {port} not as expected; see {self.dir}"
            time.sleep(0.05)

    def master_port(self) -> int:
        with sync_redis.Redis(port=self.sentinel_port, socket_timeout=1) as c:
            return int(c.sentinel_get_master_addr_by_name("mymaster")[1])

    def version(self, port: int) -> int:
        with sync_redis.Redis(port=port, socket_timeout=1) as c:
            return int(c.get("relay:prod:version") or 0)

    def kill(self, name: str) -> None:
        self.procs[name].kill()
        self.procs[name].wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[Sentinels]:
    s = Sentinels(tmp_path / "redis")
    try:
        yield s.start()
    finally:
        s.stop()


async def _until_written(write: Any, timeout: float = 20) -> float:
    """Retry a write while there is no primary (the old one is gone, the new not yet promoted)."""
    start = time.monotonic()
    while True:
        try:
            await write()
            return time.monotonic() - start
        except (RedisError, OSError):
            assert time.monotonic() - start < timeout, "no primary to write to"
            await asyncio.sleep(0.1)


async def _patch(stream: EventStream, key: str, timeout: float = 15) -> dict[str, Any]:
    """The next patch of one flag (skipping patches of others a resync may send first)."""
    async with asyncio.timeout(timeout):
        while True:
            name, data = await stream.next(timeout=timeout)
            if name == "patch" and data["path"] == f"/flags/{key}":
                return data["data"]  # type: ignore[no-any-return]


def test_nodes_follow_a_sentinel_failover_and_keep_receiving_changes(sentinels: Sentinels, tmp_path: Path) -> None:
    secrets = demo_environment(sentinels.url)  # written through Sentinel, to the primary
    nodes = [
        RelayProcess(sentinels.url, tmp_path / f"relay{i}", reconnect_max_delay="0.5", version_check_interval="1")
        for i in range(2)
    ]
    try:
        for node in nodes:
            node.start()

        async def scenario() -> None:
            admin = WritePath(storage_for(sentinels.url), actor="test")
            # No read timeout on the streams: their last bytes came before the primary died, and the
            # failover may take most of _until_written's 20 s under load; _patch bounds each wait.
            async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http:
                streams = []
                for node in nodes:
                    request = http.build_request(
                        "GET", f"{node.url}/all", headers={"Authorization": secrets["sdk_key"]}
                    )
                    streams.append(EventStream(await http.send(request, stream=True)))
                for s in streams:
                    assert (await s.next())[0] == "put"
                await admin.toggle("prod", KILL_SWITCH, False)
                for s in streams:
                    assert (await _patch(s, KILL_SWITCH))["on"] is False
                # The replica has every write before its primary dies (replication is asynchronous).
                before = sentinels.version(sentinels.primary_port)
                while sentinels.version(sentinels.replica_port) != before:
                    await asyncio.sleep(0.01)

                sentinels.kill("primary")
                waited = await _until_written(lambda: admin.toggle("prod", KILL_SWITCH, True, comment="after failover"))
                assert sentinels.master_port() == sentinels.replica_port
                assert waited < 15
                for s in streams:  # by a resync's diff or by pub/sub from the new primary
                    assert (await _patch(s, KILL_SWITCH))["on"] is True
                # The nodes are subscribed to the new primary: a later change arrives as usual,
                # here written by the CLI, which finds the primary through Sentinel too.
                result = await asyncio.to_thread(
                    CliRunner().invoke,
                    main,
                    ["flags", "toggle", "new-search", "--off", "--env", "prod"],
                    env={"RELAY_REDIS_URL": sentinels.url},
                )
                assert result.exit_code == 0, result.output
                for s in streams:
                    assert (await _patch(s, "new-search"))["on"] is False
                for s in streams:
                    await s.response.aclose()
                version = sentinels.version(sentinels.replica_port)
                for node in nodes:
                    status = (await http.get(f"{node.url}/status")).json()
                    assert status["connected"] and status["environments"]["prod"]["version"] == version
                    assert not status["environments"]["prod"]["stale"]
            await admin.storage.close()

        asyncio.run(scenario())
    finally:
        for node in nodes:
            node.stop()
