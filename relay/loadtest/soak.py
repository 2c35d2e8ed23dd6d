"""Soak: streams opening and closing for minutes while a flag keeps changing; then compare the
node's memory, file descriptors and tasks with where they started (from its /status)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.request
from typing import Any

from relay.config import Settings
from relay.loadtest.propagation import FLAG, _ensure_flag
from relay.loadtest.sse_client import SSEConnection
from relay.store.storage import Storage, connect
from relay.store.writes import WritePath
from relay.wire.clientside import encode_context


def _status(target: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{target}/status", timeout=10) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


async def run(
    target: str, redis_url: str, env: str, sdk_key: str, seconds: float, connections: int, prefix: str = "relay"
) -> dict[str, Any]:
    storage = Storage(connect(Settings(redis_url=redis_url), redis_url), prefix)
    writer = WritePath(storage, actor="loadtest-soak")
    environment = await writer.environment(env)
    on = await _ensure_flag(writer, env, FLAG)
    await asyncio.sleep(1)
    before = _status(target)["process"]
    rng = random.Random(1)
    opened = events = 0
    deadline = time.monotonic() + seconds

    def count(conn: SSEConnection, name: str, data: bytes, now: float) -> None:
        nonlocal events
        events += 1

    async def churn() -> None:
        nonlocal opened
        while time.monotonic() < deadline:
            if rng.random() < 0.5:
                url, headers = f"{target}/all", {"Authorization": sdk_key}
            else:
                ctx = {"kind": "user", "key": f"soak-{rng.randrange(100_000)}"}
                url, headers = f"{target}/eval/{environment.client_side_id}/{encode_context(ctx)}", {}
            conn = SSEConnection(url, headers, count)
            try:
                await conn.open()
            except (OSError, ConnectionError, TimeoutError):
                await asyncio.sleep(0.1)
                continue
            opened += 1
            reader = asyncio.create_task(conn.run())
            await asyncio.sleep(rng.uniform(0.1, 3.0))
            reader.cancel()
            conn.close()

    async def flip() -> None:
        nonlocal on
        while time.monotonic() < deadline:
            on = not on
            await writer.toggle(env, FLAG, on, comment="soak")
            await asyncio.sleep(1.0)

    await asyncio.gather(flip(), *(churn() for _ in range(connections)))
    await asyncio.sleep(3)  # let the node notice the last disconnects
    after = _status(target)
    await storage.close()
    return {
        "seconds": seconds,
        "concurrent": connections,
        "streams_opened": opened,
        "events_received": events,
        "before": before,
        "after": after["process"],
        "connections_left": after["environments"][env]["connections"],
    }
