"""/status of a real node (`python -m relay serve`) in LaunchDarkly Relay's shape: keys masked as
it masks them, no secret anywhere in the body, and Redis lost shows as INTERRUPTED."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from relay.access.environments import hash_key, mask_key
from tests.integration.helpers import demo_environment
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess


def test_status_is_launchdarkly_relay_s_shape_and_follows_redis(redis_server: RedisServer, tmp_path: Path) -> None:
    secrets = demo_environment(redis_server.url)
    relay = RelayProcess(redis_server.url, tmp_path / "relay", reconnect_max_delay="0.3").start()
    try:
        with httpx.Client(base_url=relay.url, timeout=10) as http:
            response = http.get("/status")
            body = response.json()
            prod = body["environments"]["prod"]
            assert body["status"] == "healthy" and body["version"] and body["clientVersion"]
            assert prod["status"] == "connected" and prod["connectionStatus"]["state"] == "VALID"
            assert prod["dataStoreStatus"]["state"] == "VALID"
            assert prod["sdkKey"] == mask_key(secrets["sdk_key"]) and prod["sdkKey"].endswith(secrets["sdk_key"][-5:])
            assert prod["mobileKey"] == mask_key(secrets["mobile_key"])
            assert prod["envId"] == secrets["client_side_id"]
            assert prod["ready"] is True and body["connected"] is True  # relay's own fields, as before
            for secret in (secrets["sdk_key"], secrets["mobile_key"]):
                for part in (secret, secret[4:-5], hash_key(secret)):
                    assert part not in response.text

            redis_server.kill()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                body = http.get("/status").json()
                if body["environments"]["prod"]["connectionStatus"]["state"] == "INTERRUPTED":
                    break
                time.sleep(0.1)
            prod = body["environments"]["prod"]
            assert prod["connectionStatus"]["state"] == "INTERRUPTED", body
            assert prod["connectionStatus"]["lastError"]["kind"] == "NETWORK_ERROR"
            # Within LaunchDarkly's disconnectedStatusTime (a minute) it stays "connected", as theirs
            # does; the later "disconnected" / "degraded" is tests/server/test_ldstatus.py's.
            assert prod["status"] == "connected" and prod["stale"] is True
    finally:
        relay.stop()
