"""The one SSE writer every stream route uses: first event, queued events, heartbeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from starlette.responses import StreamingResponse

from relay.hub import Connection
from relay.payloads import HEARTBEAT

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def _events(
    conn: Connection, first: bytes, since: int, heartbeat: float, done: Callable[[], None]
) -> AsyncIterator[bytes]:
    try:
        yield first
        while True:
            try:
                async with asyncio.timeout(heartbeat):
                    version, data = await conn.queue.get()
            except TimeoutError:
                yield HEARTBEAT
                continue
            if version < 0:  # dropped (too slow) or shutting down: the SDK reconnects for a fresh start
                return
            if version > since:  # otherwise already in the first event
                yield data
    finally:
        done()


def sse_response(
    conn: Connection, first: bytes, since: int, heartbeat: float, done: Callable[[], None]
) -> StreamingResponse:
    """A chunked text/event-stream response (uvicorn chunks a body of unknown length)."""
    return StreamingResponse(
        _events(conn, first, since, heartbeat, done), media_type="text/event-stream", headers=HEADERS
    )
