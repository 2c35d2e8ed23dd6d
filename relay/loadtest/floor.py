"""The reference floor: the least a relay could do, measured with the same tool.

A minimal asyncio server on raw sockets: each `GET` gets chunked SSE headers and a tiny `put`;
each Redis change message becomes one pre-encoded `patch` written to every connection. No routing,
no auth, no evaluation: what the hardware and Python allow, for comparison with relay's numbers.
"""

from __future__ import annotations

import asyncio
import logging

from relay.config import Settings
from relay.store.storage import Storage, connect
from relay.wire import codec, http, sse
from relay.wire.changes import read_message

logger = logging.getLogger(__name__)

HEAD = http.head(
    200, [(b"Content-Type", b"text/event-stream"), (b"Cache-Control", b"no-cache"), (b"Transfer-Encoding", b"chunked")]
)
PUT = http.chunk(sse.event("put", b'{"path":"/","data":{"flags":{},"segments":{}}}'))


async def serve(redis_url: str, env: str, host: str = "127.0.0.1", port: int = 8040, prefix: str = "relay") -> None:
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(HEAD + PUT)
            writers.add(writer)
            await reader.read()  # until the client goes away
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(handle, host, port, backlog=4096)
    storage = Storage(connect(Settings(redis_url=redis_url), redis_url), prefix)
    pubsub = storage.pubsub()
    await pubsub.subscribe(storage.key(env, "changes"))
    logger.info("reference floor listening on http://%s:%d", host, port)
    async with server:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            change = read_message(message["data"])
            if change.epoch is not None:  # (`relay env accept`): no item to patch
                continue
            event = http.chunk(
                sse.event(
                    "patch", b'{"path":"/flags/' + change.key.encode() + b'","data":' + codec.dumps(change.item) + b"}"
                )
            )
            for writer in list(writers):
                writer.write(event)
