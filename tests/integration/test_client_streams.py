"""Client-side streams against a real node: put, evaluated patches once per distinct context."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from relay.store.writes import WritePath
from tests.integration.helpers import b64, demo_environment, storage_for
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess
from tests.integration.sse import EventStream


def test_browser_streams_get_evaluated_changes_once_per_context(redis_server: RedisServer, tmp_path: Path) -> None:
    secrets = demo_environment(redis_server.url)
    relay = RelayProcess(redis_server.url, tmp_path / "relay").start()

    async def scenario() -> None:
        admin = WritePath(storage_for(redis_server.url), actor="test")
        env_id = secrets["client_side_id"]
        contexts = [{"kind": "user", "key": f"u{i}", "userType": "student"} for i in range(3)]
        async with httpx.AsyncClient(base_url=relay.url, timeout=10) as http:

            async def open_stream(ctx: dict[str, Any]) -> EventStream:
                request = http.build_request("GET", f"/eval/{env_id}/{b64(ctx)}")
                return EventStream(await http.send(request, stream=True))

            # 4 connections for the first context, 1 each for the other two: 3 distinct contexts
            streams = [await open_stream(contexts[0]) for _ in range(4)] + [await open_stream(c) for c in contexts[1:]]
            ping = EventStream(await http.send(http.build_request("GET", f"/ping/{env_id}"), stream=True))
            assert await ping.next() == ("ping", "")
            for s in streams:
                name, data = await s.next()
                assert name == "put" and data["checkout-kill-switch"]["value"] is True
                assert "internal-debug-panel" not in data
            status = (await http.get("/status")).json()
            conns = status["environments"]["prod"]["connections"]
            assert conns["client"] == 6 and conns["client_distinct_contexts"] == 3
            before = status["client_reevaluations"]

            await admin.toggle("prod", "checkout-kill-switch", False)
            for s in streams:
                name, data = await s.next()
                assert name == "patch"
                assert data == {
                    "key": "checkout-kill-switch",
                    "value": False,
                    "variation": 0,
                    "version": 2,
                    "flagVersion": 2,
                }
            assert (await ping.next())[0] == "ping"
            after = (await http.get("/status")).json()["client_reevaluations"]
            assert after - before == 3  # one flag, three distinct contexts: not six connections

            # A flag taken away from browsers is deleted from their state.
            flag = await admin.get_item("prod", "flag", "new-search")
            flag["clientSideAvailability"] = {"usingEnvironmentId": False, "usingMobileKey": True}
            await admin.put_item("prod", "flag", flag)
            for s in streams:
                assert await s.next() == ("delete", {"key": "new-search", "version": 2})

            # A change that does not alter a context's result sends it nothing.
            await admin.put_item(
                "prod", "flag", {**(await admin.get_item("prod", "flag", "internal-debug-panel")), "salt": "x"}
            )
            await admin.toggle("prod", "checkout-kill-switch", True)
            for s in streams:
                name, data = await s.next()
                assert name == "patch" and data["key"] == "checkout-kill-switch" and data["value"] is True
            for s in [*streams, ping]:
                await s.response.aclose()
        await admin.storage.close()

    try:
        asyncio.run(scenario())
    finally:
        relay.stop()
