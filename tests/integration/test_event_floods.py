"""Events never endanger flags, against real processes (a redis-server at a small maxmemory with
noeviction, `python -m relay serve`, the `relay` CLI): a flood of events stays within its budget
and a kill switch still goes through; on a Redis already full of events the kill switch frees
them and says so; a node warns about a memory policy that could lose flags or refuse writes."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.store.writes import WritePath
from relay.wire import codec
from tests.integration.helpers import demo_environment, relay_cli, run_async, storage_for
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess
from tests.integration.sse import EventStream

MB = 1_048_576
FLAG = "checkout-kill-switch"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[list[RelayProcess]]:
    """Nodes a test starts (appended to the list), stopped when it ends, however it ends."""
    started: list[RelayProcess] = []
    yield started
    for relay in started:
        relay.stop()


def flood_body(n: int, events: int = 3000) -> bytes:
    """A gzipped batch of ~1 MB of JSON (under the 1 MiB body limit), ~60 KB on the wire: custom
    events from distinct contexts, each with 200 bytes of custom data."""
    batch = [
        {
            "kind": "custom",
            "key": "clicked",
            "creationDate": 1_718_000_000_000 + i,
            "contextKeys": {"user": f"user-{n:04d}-{i:05d}"},
            "data": {"pad": "x" * 200},
        }
        for i in range(events)
    ]
    body = codec.dumps(batch)
    assert len(body) < 1_000_000
    return gzip.compress(body)


def redis_info(url: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        return await storage_for(url).client.info("memory")  # type: ignore[no-any-return]

    return run_async(read())


def redis_config(url: str, **values: Any) -> None:
    async def apply() -> None:
        client = storage_for(url).client
        for name, value in values.items():
            await client.config_set(name.replace("_", "-"), value)

    run_async(apply())


def post(http: httpx.Client, client_side_id: str, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    return http.post(f"/events/bulk/{client_side_id}", content=body, headers=headers)


async def toggle_reaches_a_stream(relay: RelayProcess, redis_url: str, sdk_key: str) -> float:
    """Seconds from a toggle (off) written through the write path to its patch on an /all stream."""
    async with httpx.AsyncClient(timeout=None) as client:
        request = client.build_request("GET", f"{relay.url}/all", headers={"Authorization": sdk_key})
        response = await client.send(request, stream=True)
        stream = EventStream(response)
        assert (await stream.next())[0] == "put"
        started = time.monotonic()
        result = await WritePath(storage_for(redis_url), actor="ops").toggle("prod", FLAG, False)
        assert result.items[0]["on"] is False
        while True:
            name, data = await stream.next(timeout=5)
            if name == "patch" and data["path"] == f"/flags/{FLAG}":
                assert data["data"]["on"] is False
                await response.aclose()
                return time.monotonic() - started


def test_an_event_flood_stays_within_its_budget_and_the_kill_switch_still_works(
    redis_server: RedisServer, node: list[RelayProcess], tmp_path: Path
) -> None:
    redis_config(redis_server.url, maxmemory=30 * MB, maxmemory_policy="noeviction")
    secrets = demo_environment(redis_server.url)
    budget = 2 * MB
    relay = RelayProcess(
        redis_server.url, tmp_path / "relay", events_max_bytes=str(budget), events_rate_limit="0"
    ).start()
    node.append(relay)
    before = int(redis_info(redis_server.url)["used_memory"])
    accepted, wire = 0, 0
    with httpx.Client(base_url=relay.url, timeout=30) as http:
        for n in range(60):  # 60 MB of JSON: twice what Redis may hold
            body = flood_body(n)
            wire += len(body)
            response = post(http, secrets["client_side_id"], body)
            assert response.status_code == 202, response.text
            accepted += 1
        status = http.get("/status").json()
    grown = int(redis_info(redis_server.url)["used_memory"]) - before
    assert accepted == 60 and status["events"]["events"]["stored"] == 60 * 3000
    assert status["events"]["max_bytes"] == budget
    assert grown < budget + MB, f"Redis grew by {grown / MB:.1f} MB for a {budget / MB:.0f} MB budget"
    seconds = run_async(toggle_reaches_a_stream(relay, redis_server.url, secrets["sdk_key"]))
    assert seconds < 1
    print(f"\nflood: 60 posts, {wire / MB:.1f} MB sent, Redis +{grown / MB:.2f} MB, toggle {seconds * 1000:.0f} ms")


def test_a_kill_switch_on_a_redis_full_of_events_frees_them_and_says_so(
    redis_server: RedisServer, node: list[RelayProcess], tmp_path: Path
) -> None:
    secrets = demo_environment(redis_server.url)
    used = int(redis_info(redis_server.url)["used_memory"])
    redis_config(redis_server.url, maxmemory=used + 8 * MB, maxmemory_policy="noeviction")
    relay = RelayProcess(
        redis_server.url, tmp_path / "relay", events_max_bytes=str(64 * MB), events_rate_limit="0"
    ).start()
    node.append(relay)
    posted = 0
    with httpx.Client(base_url=relay.url, timeout=30) as http:
        for events in (3000, 300, 20):  # until Redis is full to its last few KB: large batches, then small ones
            for _ in range(200):
                response = post(http, secrets["client_side_id"], flood_body(posted, events))
                if response.status_code != 202:
                    break
                posted += 1
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "redis_out_of_memory" and response.headers["retry-after"] == "10"
    assert posted > 10
    # Redis frees idle clients' query buffers (MBs after large posts) within seconds: once it has,
    # pin it full, 1 MB over its maxmemory, as a Redis still being fed events would be.
    time.sleep(3)
    redis_config(redis_server.url, maxmemory=int(redis_info(redis_server.url)["used_memory"]) - MB)

    toggled = relay_cli(redis_server.url, "flags", "toggle", FLAG, "--off", "--env", "prod", "--comment", "incident")
    assert toggled.returncode == 0, toggled.stderr
    assert "note: Redis was out of memory: relay freed " in toggled.stdout
    assert "turned off checkout-kill-switch" in toggled.stdout
    on = relay_cli(redis_server.url, "flags", "toggle", FLAG, "--on", "--env", "prod", "--json")
    assert on.returncode == 0 and codec.loads(on.stdout)["notes"] == []  # room was made: nothing more to free
    body = httpx.get(f"{relay.url}/sdk/latest-flags/{FLAG}", headers={"Authorization": secrets["sdk_key"]}).json()
    assert body["on"] is True and body["version"] == 3  # the node applied both


def test_a_node_warns_when_redis_could_evict_flags_or_refuse_writes(
    redis_server: RedisServer, node: list[RelayProcess], tmp_path: Path
) -> None:
    redis_config(redis_server.url, maxmemory=30 * MB, maxmemory_policy="allkeys-lru")
    secrets = demo_environment(redis_server.url)
    demo_environment(redis_server.url, "staging")
    relay = RelayProcess(redis_server.url, tmp_path / "relay").start()  # 16 MB of events per environment
    node.append(relay)
    status = httpx.get(f"{relay.url}/status").json()
    evicts, room = status["warnings"]
    assert "maxmemory-policy is allkeys-lru" in evicts and "flags and segments included" in evicts
    assert "maxmemory is 30 MB" in room and "up to 32 MB (2 environments" in room
    log = relay.log.read_text()
    assert evicts in log and room in log
    assert secrets  # the environments exist: the budget counts them

    redis_config(redis_server.url, maxmemory_policy="noeviction", maxmemory=0)
    fixed = RelayProcess(redis_server.url, tmp_path / "fixed").start()
    node.append(fixed)
    assert httpx.get(f"{fixed.url}/status").json()["warnings"] == []
    assert "maxmemory" not in fixed.log.read_text()


def test_events_on_a_redis_of_their_own(redis_server: RedisServer, node: list[RelayProcess], tmp_path: Path) -> None:
    events_redis = RedisServer(tmp_path / "events-redis").start()
    try:
        secrets = demo_environment(redis_server.url)
        relay = RelayProcess(redis_server.url, tmp_path / "relay", events_redis_url=events_redis.url).start()
        node.append(relay)
        with httpx.Client(base_url=relay.url) as http:
            assert post(http, secrets["client_side_id"], flood_body(0, events=10)).status_code == 202

        async def lengths() -> tuple[int, int]:
            return (
                await storage_for(redis_server.url).client.xlen("relay:prod:events"),
                await storage_for(events_redis.url).client.xlen("relay:prod:events"),
            )

        assert run_async(lengths()) == (0, 1)
    finally:
        events_redis.stop()
