"""Event traffic and Redis trouble against real processes (redis-server, `python -m relay serve`):
event posts beyond a credential's rate get 429, Redis trouble gets a JSON 503 with Retry-After and
a bounded number of log lines (no traceback), and event posters that exhaust their connection
pool never make the node stale nor slow a kill switch."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay.store.writes import WritePath
from relay.wire import codec
from tests.integration.helpers import demo_environment, run_async, storage_for
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess
from tests.integration.sse import EventStream

BATCH = codec.dumps([{"kind": "custom", "key": "clicked", "creationDate": 1, "contextKeys": {"user": "u"}}])
FLAG = "checkout-kill-switch"
_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[list[RelayProcess]]:
    started: list[RelayProcess] = []
    yield started
    for relay in started:
        relay.stop()


def start(redis: RedisServer, tmp_path: Path, node: list[RelayProcess], **settings: str) -> dict[str, str]:
    secrets = demo_environment(redis.url)
    node.append(RelayProcess(redis.url, tmp_path / "relay", **settings).start())
    return secrets


def test_posts_beyond_a_credential_s_rate_get_429_with_retry_after(
    redis_server: RedisServer, tmp_path: Path, node: list[RelayProcess]
) -> None:
    secrets = start(redis_server, tmp_path, node, events_rate_limit="5", events_rate_burst="20")
    relay = node[0]
    with httpx.Client(base_url=relay.url, timeout=10) as http:
        browser = [http.post(f"/events/bulk/{secrets['client_side_id']}", content=BATCH) for _ in range(40)]
        codes = Counter(r.status_code for r in browser)
        assert codes[202] >= 20 and codes[429] >= 15, codes  # the burst, then about 5 a second
        refused = next(r for r in browser if r.status_code == 429)
        assert refused.json()["code"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1
        assert refused.headers["access-control-allow-origin"] == "*"  # a page can read why
        # Another credential of the same environment has a bucket of its own.
        server = http.post("/bulk", content=BATCH, headers={"Authorization": secrets["sdk_key"]})
        assert server.status_code == 202
        status = http.get("/status").json()["events"]
    assert status["posts"]["rate_limited"] == codes[429] and status["rate_limit"] == {"per_second": 5, "burst": 20}


def test_redis_trouble_is_a_json_503_with_retry_after_and_a_few_log_lines(
    redis_server: RedisServer, tmp_path: Path, node: list[RelayProcess]
) -> None:
    secrets = start(redis_server, tmp_path, node, events_rate_limit="0")
    relay = node[0]
    env_id = secrets["client_side_id"]

    async def config_set(name: str, value: int) -> None:
        await storage_for(redis_server.url).client.config_set(name, value)

    with httpx.Client(base_url=relay.url, timeout=10) as http:
        run_async(config_set("maxmemory", 1))  # out of memory: every write refused
        full = [http.post(f"/events/bulk/{env_id}", content=BATCH) for _ in range(200)]
        run_async(config_set("maxmemory", 0))
        redis_server.stop()  # unreachable
        gone = [http.post("/bulk", content=BATCH, headers={"Authorization": secrets["sdk_key"]}) for _ in range(200)]
        assert http.get("/healthz").status_code == 200  # the node itself is fine
    for responses, code in ((full, "redis_out_of_memory"), (gone, "redis_unreachable")):
        assert {r.status_code for r in responses} == {503}
        assert {r.headers["content-type"] for r in responses} == {"application/json"}
        assert {r.json()["code"] for r in responses} == {code}
        assert all(int(r.headers["retry-after"]) >= 1 for r in responses)
    assert "maxmemory" in full[0].json()["message"] and "redis://" not in gone[0].json()["message"]
    assert full[0].headers["access-control-allow-origin"] == "*"
    log = relay.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]
    lines = [line for line in log.splitlines() if "event post answered 503" in line]
    assert len(lines) == 2, lines  # one per kind of trouble in these seconds, not one per post
    assert "out of memory" in lines[0] and "unreachable" in lines[1]


async def _poster(url: str, path: str, stop: asyncio.Event, codes: Counter[int]) -> None:
    """One keep-alive connection posting small batches as fast as the node answers them."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BATCH)}\r\n\r\n"
    ).encode() + BATCH
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        while not stop.is_set():
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            codes[int(head.split(b" ", 2)[1])] += 1
            length = _CONTENT_LENGTH.search(head)
            await reader.readexactly(int(length.group(1)) if length else 0)
    except (OSError, asyncio.IncompleteReadError):
        codes[0] += 1
    finally:
        writer.close()


def test_event_posters_exhausting_their_pool_never_make_the_node_stale(
    redis_server: RedisServer, tmp_path: Path, node: list[RelayProcess]
) -> None:
    fast = {"version_check_interval": "0.5", "reconnect_max_delay": "0.3", "redis_timeout": "2"}
    secrets = start(redis_server, tmp_path, node, events_rate_limit="0", **fast)
    relay = node[0]

    async def scenario() -> tuple[Counter[int], list[dict[str, object]], float]:
        stop, codes = asyncio.Event(), Counter[int]()
        path = f"/events/bulk/{secrets['client_side_id']}"
        posters = [asyncio.create_task(_poster(relay.url, path, stop, codes)) for _ in range(200)]
        seen: list[dict[str, object]] = []
        async with httpx.AsyncClient(base_url=relay.url, timeout=10) as http:
            try:
                await asyncio.sleep(1)
                for _ in range(8):  # Redis stalls: every post in flight holds its connection meanwhile
                    redis_server.signal(signal.SIGSTOP)
                    await asyncio.sleep(0.8)
                    redis_server.signal(signal.SIGCONT)
                    await asyncio.sleep(0.2)
                    seen.append((await http.get("/status")).json()["environments"]["prod"])
                seconds = await _toggle_arrives(http, relay, redis_server.url, secrets["sdk_key"])
                seen.append((await http.get("/status")).json()["environments"]["prod"])
            finally:
                redis_server.signal(signal.SIGCONT)
                stop.set()
                await asyncio.gather(*posters)
        return codes, seen, seconds

    codes, seen, seconds = run_async(scenario())
    log = relay.log.read_text()
    assert not any(s["stale"] for s in seen) and "lost Redis" not in log, (seen, log[-3000:])
    assert seconds < 1, seconds
    assert codes[202] > 100 and codes[503] > 0, codes  # posts went through, and some found the pool full
    assert "Traceback" not in log, log[-3000:]
    print(f"\npool starvation: {dict(codes)}, toggle {seconds * 1000:.0f} ms")


async def _toggle_arrives(http: httpx.AsyncClient, relay: RelayProcess, redis_url: str, sdk_key: str) -> float:
    request = http.build_request("GET", f"{relay.url}/all", headers={"Authorization": sdk_key})
    response = await http.send(request, stream=True)
    stream = EventStream(response)
    assert (await stream.next(timeout=10))[0] == "put"
    started = time.monotonic()
    await WritePath(storage_for(redis_url), actor="ops").toggle("prod", FLAG, False)
    while True:
        name, data = await stream.next(timeout=10)
        if name == "patch" and data["path"] == f"/flags/{FLAG}":
            await response.aclose()
            return time.monotonic() - started
