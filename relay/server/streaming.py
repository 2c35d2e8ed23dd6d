"""The one SSE response every stream route uses: a first event, then bytes written by the hubs."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from relay.fanout.hub import Sink
from relay.runtime.gcpolicy import GCPolicy
from relay.server.responses import JsonResponse
from relay.server.uvicorn.streams import chunk_writer

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def write_now(send: Send, data: bytes) -> bool:
    """Write a body chunk without awaiting: True if written, False if the transport is paused (the
    client is not reading) — then nothing was written and the caller drops the stream.

    uvicorn's `send` only suspends when the socket's buffer is over its high-water mark, so driving
    the coroutine one step either finishes the write or shows that it would have to wait."""
    step = send({"type": "http.response.body", "body": data, "more_body": True})
    try:
        step.send(None)
    except StopIteration:
        return True
    except Exception:  # the connection is gone
        return False
    step.close()
    return False


@dataclass
class StreamGate:
    """A node's limits on its stream connections, shared by every stream route.

    Beyond `max_connections` a stream request gets 503 with a jittered Retry-After (SDKs back off
    and retry, perhaps on another node). Each stream ends after `max_lifetime` × a random factor in
    [1 - jitter, 1]: the SDK reconnects at once and gets a fresh `put`, and the jitter spreads those
    reconnections out, so after a rolling restart connections drift back to an even spread."""

    max_connections: int = 20_000
    max_lifetime: float = 0.0  # 0: forever
    jitter: float = 0.25
    retry_after: int = 5
    open: int = 0
    refused: int = 0
    expired: int = 0
    # Set at SIGTERM: uvicorn still accepts for a moment, and a stream opened then would be held
    # until the shutdown backstop; refused instead, its SDK retries (nginx: on the next node).
    draining: bool = False
    # Told of every stream that opens (the process's one policy, from the composition root).
    gc_policy: GCPolicy = field(default_factory=GCPolicy)

    def lifetime(self) -> float | None:
        if self.max_lifetime <= 0:
            return None
        return self.max_lifetime * random.uniform(1 - self.jitter, 1)

    def refusal(self) -> Response:
        self.refused += 1
        if self.draining:
            body = {"code": "shutting_down", "message": "this node is shutting down; reconnect"}
            return JsonResponse(body, status_code=503, headers={"Retry-After": "1", "Connection": "close"})
        return self.busy("too_many_streams", f"this node holds its maximum of {self.max_connections} streams")

    def busy(self, code: str, message: str) -> Response:
        """A 503 with the jittered Retry-After of every refusal for a node's limits on streams."""
        retry = random.randint(self.retry_after, 2 * self.retry_after)
        return JsonResponse({"code": code, "message": message}, status_code=503, headers={"Retry-After": str(retry)})


class DirectStream(Response):
    """An SSE response that the hub writes to directly (see `write_now`), ending on disconnect, on
    shutdown, or when the hub drops it for falling behind."""

    def __init__(
        self,
        env: str,
        kind: str,
        snapshot: Callable[[], tuple[int, bytes]],
        attach: Callable[[Sink], None],
        detach: Callable[[Sink], None],
        gate: StreamGate,
    ) -> None:
        # No Content-Length: uvicorn then sends the body chunked, event by event.
        self.status_code = 200
        self.background = None
        self.raw_headers = [(b"content-type", b"text/event-stream")] + [
            (k.lower().encode(), v.encode()) for k, v in HEADERS.items()
        ]
        self.env, self.kind, self.snapshot, self.attach, self.detach = env, kind, snapshot, attach, detach
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self.gate
        if gate.open >= gate.max_connections or gate.draining:
            await gate.refusal()(scope, receive, send)
            return
        gate.open += 1
        try:
            await self._stream(receive, send)
        finally:
            gate.open -= 1

    async def _stream(self, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        since, first = self.snapshot()
        await send({"type": "http.response.body", "body": first, "more_body": True})
        ended = asyncio.Event()
        sink = Sink(self.env, self.kind, partial(write_now, send), since, ended.set, chunk_writer(send))
        self.attach(sink)
        self.gate.gc_policy.stream_opened()  # its objects live as long as it: out of the GC's full passes
        latest, fresh = self.snapshot()
        if latest != since:  # a change landed while the first event was being sent: resend in full
            sink.since = latest
            if not sink.write(fresh):
                self.detach(sink)
                return

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        lifetime = self.gate.lifetime()
        expiry = None if lifetime is None else asyncio.get_running_loop().call_later(lifetime, self._expire, ended)
        waiters = [asyncio.ensure_future(disconnected()), asyncio.ensure_future(ended.wait())]
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if expiry is not None:
                expiry.cancel()
            self.detach(sink)
            for waiter in waiters:
                waiter.cancel()
        if waiters[1] in done:  # ended by us: finish the response (briefly: the client may be stuck)
            with contextlib.suppress(TimeoutError, Exception):
                async with asyncio.timeout(1.0):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _expire(self, ended: asyncio.Event) -> None:
        self.gate.expired += 1
        ended.set()
