"""The real LaunchDarkly server-side SDK against a real relay node, streaming and polling."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldclient
import pytest
from click.testing import CliRunner
from ldclient.config import Config
from ldclient.context import Context as SDKContext

from relay.cli import main
from relay.cli.demo import demo_document
from relay.evaluation import Snapshot, parse_context, parse_items
from tests.integration.helpers import demo_environment, run_async, storage_for
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess

CONTEXTS = [
    {"kind": "user", "key": f"user-{i}", "userType": "student" if i % 3 == 0 else "pro", "email": f"u{i}@example.com"}
    for i in range(40)
] + [{"kind": "multi", "user": {"key": "ann", "device": {"platform": "web"}}, "org": {"key": "acme"}}]


@pytest.fixture
def node(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[RelayProcess, dict[str, str]]]:

    secrets = demo_environment(redis_server.url)
    # The access log on: tests read it for request lines, and for keys that must not be there.
    relay = RelayProcess(redis_server.url, tmp_path / "relay", heartbeat_interval="1", access_log="true").start()
    yield relay, secrets
    relay.stop()


def test_the_access_log_shows_the_forwarded_client(node: tuple[RelayProcess, dict[str, str]]) -> None:
    # X-Forwarded-For is read (from a proxy on 127.0.0.1, uvicorn's default rule) when the access
    # log, its one user, is on.
    relay, _ = node
    request = urllib.request.Request(f"{relay.url}/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 200
    assert wait_for(lambda: '203.0.113.7:0 - "GET /healthz HTTP/1.1" 200' in relay.log.read_text()) < 10


def toggle(redis_url: str, key: str, on: bool) -> None:
    result = CliRunner().invoke(
        main, ["flags", "toggle", key, "--on" if on else "--off", "--env", "prod"], env={"RELAY_REDIS_URL": redis_url}
    )
    assert result.exit_code == 0, result.output


def client_for(relay: RelayProcess, sdk_key: str, *, stream: bool) -> ldclient.LDClient:
    config = Config(
        sdk_key, base_uri=relay.url, stream_uri=relay.url, events_uri=relay.url, stream=stream, send_events=False
    )
    client = ldclient.LDClient(config, start_wait=10)
    assert client.is_initialized()
    return client


def wait_for(check: Any, timeout: float = 10) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.01)
    return time.monotonic() - start


def test_streaming_sdk_evaluates_like_relay_and_sees_the_kill_switch(
    node: tuple[RelayProcess, dict[str, str]], redis_server: RedisServer
) -> None:
    relay, secrets = node
    client = client_for(relay, secrets["sdk_key"], stream=True)
    try:
        flags, segments = parse_items(demo_document(), default_version=1)
        snapshot = Snapshot(flags, segments)
        for ctx in CONTEXTS:
            for key in flags:
                sdk = client.variation_detail(key, SDKContext.from_dict(ctx), "default")
                ours = snapshot.evaluate(key, parse_context(ctx))
                assert (sdk.value, sdk.variation_index, sdk.reason) == (
                    ours.value,
                    ours.variation,
                    ours.reason.to_dict(),
                )
        user = SDKContext.from_dict(CONTEXTS[1])
        assert client.variation("checkout-kill-switch", user, None) is True
        toggle(redis_server.url, "checkout-kill-switch", False)
        seconds = wait_for(lambda: client.variation("checkout-kill-switch", user, None) is False)
        assert seconds < 5
        toggle(redis_server.url, "checkout-kill-switch", True)
        wait_for(lambda: client.variation("checkout-kill-switch", user, None) is True)
    finally:
        client.close()


def test_polling_sdk_sees_the_kill_switch(
    node: tuple[RelayProcess, dict[str, str]], redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay, secrets = node
    # The SDK polls at most every 30 s; the test shortens its interval, nothing else.
    monkeypatch.setattr(Config, "poll_interval", property(lambda self: 0.5))
    client = client_for(relay, secrets["sdk_key"], stream=False)
    try:
        user = SDKContext.from_dict(CONTEXTS[0])
        assert client.variation("checkout-kill-switch", user, None) is True
        toggle(redis_server.url, "checkout-kill-switch", False)
        wait_for(lambda: client.variation("checkout-kill-switch", user, None) is False)
    finally:
        client.close()


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_polling_routes_etags_and_auth(node: tuple[RelayProcess, dict[str, str]], redis_server: RedisServer) -> None:
    relay, secrets = node
    auth = {"Authorization": secrets["sdk_key"]}
    status, headers, body = _get(f"{relay.url}/sdk/latest-all", auth)
    assert status == 200 and headers["content-type"].startswith("application/json")
    doc = json.loads(body)
    assert set(doc) == {"flags", "segments"} and "checkout-kill-switch" in doc["flags"]
    assert _get(f"{relay.url}/sdk/latest-all", {**auth, "If-None-Match": headers["etag"]})[0] == 304
    assert _get(f"{relay.url}/sdk/latest-all", {"Authorization": f"api_key {secrets['sdk_key']}"})[0] == 200
    status, _, body = _get(f"{relay.url}/sdk/latest-flags/new-search", auth)
    assert status == 200 and json.loads(body)["key"] == "new-search"
    assert _get(f"{relay.url}/sdk/latest-flags/nope", auth)[0] == 404
    assert json.loads(_get(f"{relay.url}/sdk/latest-segments/beta-testers", auth)[2])["included"] == ["ann", "bob"]
    assert set(json.loads(_get(f"{relay.url}/sdk/latest-flags", auth)[2])) == set(doc["flags"])
    for bad in ({}, {"Authorization": "sdk-nope"}, {"Authorization": secrets["mobile_key"]}):
        status, _, body = _get(f"{relay.url}/sdk/latest-all", bad)
        assert status == 401 and json.loads(body)["code"] == "unauthorized"
    toggle(redis_server.url, "new-search", False)
    wait_for(lambda: _get(f"{relay.url}/sdk/latest-all", {**auth, "If-None-Match": headers["etag"]})[0] == 200)


def test_health_status_and_metrics(node: tuple[RelayProcess, dict[str, str]], redis_server: RedisServer) -> None:
    import base64

    relay, secrets = node
    ctx = base64.urlsafe_b64encode(json.dumps({"kind": "user", "key": "u"}).encode()).decode().rstrip("=")
    assert _get(f"{relay.url}/sdk/evalx/{secrets['client_side_id']}/contexts/{ctx}", {})[0] == 200
    toggle(redis_server.url, "new-search", False)
    wait_for(lambda: "relay_propagation_seconds_count 1.0" in _get(f"{relay.url}/metrics", {})[2].decode())
    assert 'relay_evaluation_seconds_count{route="evalx"} 1.0' in _get(f"{relay.url}/metrics", {})[2].decode()
    assert _get(f"{relay.url}/healthz", {})[0] == 200
    ready = json.loads(_get(f"{relay.url}/readyz", {})[2])
    assert ready == {"ready": True, "redis_connected": True, "stale": [], "diverged": []}
    status = json.loads(_get(f"{relay.url}/status", {})[2])
    assert status["connected"] and status["environments"]["prod"]["flags"] == 5
    metrics = _get(f"{relay.url}/metrics", {})[2].decode()
    assert 'relay_data_version{env="prod"} 7.0' in metrics and "relay_redis_connected 1.0" in metrics


def test_sigterm_ends_open_streams_and_exits(redis_server: RedisServer, tmp_path: Path) -> None:
    import signal
    import threading

    from relay.store.writes import WritePath

    async def setup() -> dict[str, str]:
        admin = WritePath(storage_for(redis_server.url), actor="test")
        _, secrets = await admin.create_environment("prod")
        return secrets

    secrets = run_async(setup())
    relay = RelayProcess(redis_server.url, tmp_path / "relay").start()
    ended = threading.Event()

    def read_stream() -> None:
        request = urllib.request.Request(f"{relay.url}/all", headers={"Authorization": secrets["sdk_key"]})
        with urllib.request.urlopen(request, timeout=20) as r:
            while r.read(1):
                pass
        ended.set()  # the server ended the stream cleanly (EOF, not an error)

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    time.sleep(0.5)
    start = time.monotonic()
    assert relay.stop(signal.SIGTERM, timeout=15) == 0
    assert ended.wait(5) and time.monotonic() - start < 5
    assert "Finished server process" in relay.log.read_text()


def test_a_resync_reaches_open_streams_as_patches_and_logs_hold_no_keys(
    node: tuple[RelayProcess, dict[str, str]], redis_server: RedisServer
) -> None:
    import asyncio

    import httpx

    from relay.wire import codec
    from tests.integration.sse import EventStream

    relay, secrets = node

    async def scenario() -> None:
        storage = storage_for(redis_server.url)
        async with httpx.AsyncClient(base_url=relay.url, timeout=10) as http:
            request = http.build_request("GET", "/all", headers={"Authorization": secrets["sdk_key"]})
            stream = EventStream(await http.send(request, stream=True))
            name, put = await stream.next()
            assert name == "put" and set(put["data"]) == {"flags", "segments"}
            version = int(await storage.client.get("relay:prod:version"))
            # Two writes whose messages are lost, then a later message: the node sees the gap.
            quiet = {"key": "quiet", "version": 1, "on": True, "variations": [1], "fallthrough": {"variation": 0}}
            await storage.client.hset("relay:prod:flags", "quiet", codec.dumps(quiet))
            await storage.client.hset(
                "relay:prod:flags",
                "new-search",
                codec.dumps({**put["data"]["flags"]["new-search"], "version": 9, "on": False}),
            )
            await storage.client.set("relay:prod:version", version + 3)
            await storage.client.publish(
                "relay:prod:changes", codec.dumps({"version": version + 3, "kind": "flag", "key": "x", "item": quiet})
            )
            patched = {}
            while len(patched) < 2:
                name, data = await stream.next()
                assert name == "patch", (name, data)  # patches, not a new put or a reconnect
                patched[data["path"]] = data["data"]
            assert patched["/flags/quiet"]["version"] == 1 and patched["/flags/new-search"]["on"] is False
            await stream.response.aclose()
        await storage.close()

    asyncio.run(scenario())
    log = relay.log.read_text()
    assert "GET /all" in log
    for secret in (secrets["sdk_key"], secrets["mobile_key"]):
        assert secret not in log


def test_idle_streams_get_heartbeat_comments(node: tuple[RelayProcess, dict[str, str]]) -> None:
    import socket

    relay, secrets = node  # heartbeat_interval is 1 s for this node
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as s:
        s.sendall(f"GET /all HTTP/1.1\r\nHost: x\r\nAuthorization: {secrets['sdk_key']}\r\n\r\n".encode())
        received = b""
        deadline = time.monotonic() + 5
        while b"\n:\n\n" not in received and time.monotonic() < deadline:
            received += s.recv(65536)
    assert b"transfer-encoding: chunked" in received.lower() and b"event: put" in received
    assert b"\n:\n\n" in received  # a comment line, after the put, while nothing changed
