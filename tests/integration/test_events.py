"""Analytics events: accepted, made compact and stored once, from the real SDK and from raw requests."""

from __future__ import annotations

import base64
import gzip
import json
import time
from pathlib import Path
from typing import Any

import httpx
import ldclient
from ldclient.config import Config
from ldclient.context import Context as SDKContext

from relay.store.events import EventSink
from relay.wire.events import read_events
from tests.integration.helpers import demo_environment, run_async, storage_for
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess


def _events(url: str) -> list[dict[str, Any]]:
    """Every stored batch, newest first, its events decoded."""

    async def read() -> list[dict[str, Any]]:
        sink = EventSink(storage_for(url), max_entries=1, max_bytes=1)
        return [{**e, "events": read_events(e["events"].encode())} for e in await sink.read("prod", count=1000)]

    return run_async(read())


def _status(relay: RelayProcess) -> dict[str, Any]:
    return httpx.get(f"{relay.url}/status", timeout=10).json()  # type: ignore[no-any-return]


def test_events_from_every_kind_of_sdk_are_stored_once(redis_server: RedisServer, tmp_path: Path) -> None:
    secrets = demo_environment(redis_server.url)
    relay = RelayProcess(redis_server.url, tmp_path / "relay").start()
    try:
        config = Config(secrets["sdk_key"], base_uri=relay.url, stream_uri=relay.url, events_uri=relay.url)
        client = ldclient.LDClient(config, start_wait=10)
        user = SDKContext.from_dict({"kind": "user", "key": "u1", "name": "Ann", "email": "ann@example.com"})
        client.variation("checkout-kill-switch", user, False)
        client.track("purchase", user, metric_value=12.5)
        client.flush()
        deadline = time.monotonic() + 10
        while not any(e["source"] == "server" for e in _events(redis_server.url)):
            assert time.monotonic() < deadline, "the SDK's events never arrived"
            time.sleep(0.05)
        client.close()
        stored = [ev for e in _events(redis_server.url) if e["source"] == "server" for ev in e["events"]]
        assert {"kind": "custom", "key": "purchase", "contextKeys": {"user": "u1"}, "metricValue": 12.5} in [
            {k: v for k, v in ev.items() if k != "creationDate"} for ev in stored
        ]  # context keys only: not the name or the email
        assert not any(ev["kind"] in ("summary", "index") for ev in stored)
        assert _status(relay)["events"]["events"]["summary"] >= 1  # counted, not stored

        diagnostics = _status(relay)["events"]["posts"].get("diagnostic", 0)  # the SDK sends its own
        with httpx.Client(base_url=relay.url, timeout=10) as http:
            env_id = secrets["client_side_id"]
            batch = [{"kind": "custom", "key": "clicked", "creationDate": 1, "contextKeys": {"user": "u"}}]
            headers = {"X-LaunchDarkly-Payload-ID": "p-1", "Origin": "https://app.example"}
            first = http.post(f"/events/bulk/{env_id}", json=batch, headers=headers)
            assert first.status_code == 202 and first.content == b""
            assert first.headers["access-control-allow-origin"] == "https://app.example"
            assert http.post(f"/events/bulk/{env_id}", json=batch, headers=headers).status_code == 202  # a retry
            assert len([e for e in _events(redis_server.url) if e["source"] == "browser"]) == 1
            assert _status(relay)["events"]["posts"]["duplicate"] == 1
            mobile = {"Authorization": f"api_key {secrets['mobile_key']}", "Content-Encoding": "gzip"}
            assert (
                http.post(
                    "/mobile/events/bulk", content=gzip.compress(json.dumps(batch).encode()), headers=mobile
                ).status_code
                == 202
            )
            assert http.post(f"/events/diagnostic/{env_id}", json={"kind": "diagnostic"}).status_code == 202
            pixel = http.get(
                f"/a/{env_id}.gif", params={"d": base64.urlsafe_b64encode(json.dumps(batch).encode()).decode()}
            )
            assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
            assert http.post("/bulk", json=batch).status_code == 401
            assert (
                http.post(
                    f"/events/bulk/{env_id}", content=b"{nope", headers={"Content-Type": "application/json"}
                ).status_code
                == 400
            )
            assert http.post(f"/events/bulk/{env_id}", json={"not": "an array"}).status_code == 400
            assert http.post("/events/bulk/unknown", json=batch).status_code == 404
        assert {e["source"] for e in _events(redis_server.url)} == {"server", "browser", "mobile"}
        assert _status(relay)["events"]["posts"]["diagnostic"] == diagnostics + 1  # counted, not stored
    finally:
        relay.stop()
