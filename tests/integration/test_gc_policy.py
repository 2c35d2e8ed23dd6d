"""What relay.runtime.gcpolicy relies on, with real streams: a closed stream's objects are freed by reference
counting (no cyclic garbage for a frozen stream to leak), streams are frozen in batches as they open,
and /metrics shows the collector's pauses."""

from __future__ import annotations

import asyncio
import collections
import gc

import uvicorn
import uvloop

from relay.app import create_app
from relay.config import Settings
from relay.runtime.gcpolicy import GCPolicy
from tests.integration.helpers import demo_environment
from tests.integration.redis_server import RedisServer, free_port

STREAMS = 120
OURS = ("relay", "uvicorn", "starlette", "uvloop", "asyncio", "httptools")


async def _open(port: int, sdk_key: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /all HTTP/1.1\r\nHost: relay\r\nAuthorization: {sdk_key}\r\n\r\n".encode())
    await writer.drain()
    assert b"200 OK" in await reader.readuntil(b"\r\n\r\n")
    await reader.readuntil(b"event: put")
    return reader, writer


async def _get(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n".encode())
    body = await reader.read()
    writer.close()
    return body.decode()


async def _scenario(redis_url: str, sdk_key: str, policy: GCPolicy) -> tuple[int, collections.Counter[str], str]:
    port = free_port()
    app = create_app(Settings(), redis_url=redis_url, gc_policy=policy)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        gc.unfreeze()  # garbage earlier tests left in this process is not this test's
        gc.collect()
        freezes = policy.freezes
        conns = [await _open(port, sdk_key) for _ in range(STREAMS)]
        frozen = policy.freezes - freezes
        gc.collect()
        for _, writer in conns:
            writer.close()
        del conns
        await asyncio.sleep(0.5)  # the node sees every disconnect and ends the streams
        gc.unfreeze()  # what the freezes hid: garbage here is what they would have leaked
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            garbage = collections.Counter(
                f"{type(o).__module__}.{type(o).__qualname__}"
                for o in gc.garbage
                if type(o).__module__.split(".")[0] in OURS
            )
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        metrics = await _get(port, "/metrics")
        return frozen, garbage, metrics
    finally:
        server.should_exit = True
        await serving


def test_streams_are_frozen_in_batches_and_leave_no_cyclic_garbage(redis_server: RedisServer) -> None:
    secrets = demo_environment(redis_server.url)
    policy = GCPolicy(batch=40)  # handed to the node (create_app builds one when given none)
    try:
        frozen, garbage, metrics = uvloop.run(_scenario(redis_server.url, secrets["sdk_key"], policy))
    finally:
        gc.unfreeze()
    assert frozen == STREAMS // 40
    # Per stream: nothing. (A few asyncio Timeouts of redis-py's polling are cycles at any moment;
    # the collection before each freeze frees those instead of freezing them.)
    per_stream = {kind: n for kind, n in garbage.items() if n >= STREAMS // 2}
    assert not per_stream, f"closed streams left cyclic garbage a freeze would leak: {per_stream}"
    assert f"relay_gc_freezes_total {float(policy.freezes)}" in metrics
    assert 'relay_gc_collections_total{generation="2"}' in metrics
    assert 'relay_gc_pause_max_seconds{generation="0"}' in metrics
    assert "relay_gc_frozen_objects " in metrics
