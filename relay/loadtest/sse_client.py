"""A minimal SSE client on an asyncio Protocol: cheap enough to hold ten thousand connections from
one process, and it timestamps each event the moment its bytes arrive.

No task per connection: the event loop calls `data_received` with the bytes, which are de-chunked
and split into events right there. (The first version read each stream in its own task through
asyncio streams — a task wake-up, `readline` and `readexactly` per event — and at 10,000
connections the tool, not the server, was what the propagation figures measured.)

With `deferred`, `data_received` only timestamps the bytes and keeps them; `drain()` parses them
later, each piece with its own arrival time, so the events and their times are exactly what
parsing on arrival gives. At 10,000 connections parsing on arrival (~9 µs an event) made the
tool's reading, not the server's writing, the last thing a flip waited for.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

OnEvent = Callable[["SSEConnection", str, bytes, float], None]  # (connection, event, raw data, arrival)


class HTTPStatusError(ConnectionError):
    """The server answered the stream request with a status other than 200."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(f"{url}: HTTP {status}")
        self.status = status


class NoResponseError(TimeoutError):
    """Connected, but no response headers arrived within the timeout."""


class NotAStreamError(ConnectionError):
    """A 200 response that is not an event stream (the target is some other web server)."""

    def __init__(self, url: str, content_type: str) -> None:
        super().__init__(f"{url}: Content-Type {content_type or '(none)'}, not text/event-stream")
        self.content_type = content_type


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, conn: SSEConnection) -> None:
        self.conn = conn
        self.head = b""
        self.headers: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.chunked = False
        self.raw = b""  # body bytes not yet de-chunked
        self.events = b""  # de-chunked bytes not yet split into events
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        backlog = self.conn.backlog
        if backlog is not None and self.headers.done():
            backlog.append((now, data))
            self.conn.arrived[0] += 1
            return
        self.parse(data, now)

    def parse(self, data: bytes, now: float) -> None:
        if not self.headers.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self.head[: end + 4], self.head[end + 4 :]
            self.chunked = b"transfer-encoding: chunked" in head.lower()
            self.headers.set_result(head)
            if not data:
                return
        if self.chunked:
            self._dechunk(data)
        else:
            self.events += data
        if b"\n\n" in self.events:
            *complete, self.events = self.events.split(b"\n\n")
            for raw in complete:
                self.conn._dispatch(raw, now)

    def _dechunk(self, data: bytes) -> None:
        raw = self.raw + data if self.raw else data
        pos = 0
        while True:
            eol = raw.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(raw[pos:eol].split(b";")[0].strip() or b"0", 16)
            if size == 0:  # the last chunk: the server ended the stream
                if self.transport is not None:
                    self.transport.close()
                pos = len(raw)
                break
            start, end = eol + 2, eol + 2 + size
            if len(raw) < end + 2:
                break
            self.events += raw[start:end]
            pos = end + 2
        self.raw = raw[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.headers.done():
            self.headers.set_exception(ConnectionError("closed before the response headers"))
        if exc is not None and self.conn.error is None:
            self.conn.error = f"{type(exc).__name__}: {exc}"
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass(eq=False)
class SSEConnection:
    url: str
    headers: dict[str, str]
    on_event: OnEvent
    label: str = ""
    events: int = 0
    error: str | None = None
    # Deferred parsing: arrivals kept as (time, bytes) until `drain()`, counted in `arrived[0]`
    # (a list, so that many connections can share one counter).
    backlog: list[tuple[float, bytes]] | None = None
    arrived: list[int] = field(default_factory=lambda: [0])
    _protocol: _StreamProtocol | None = field(default=None, repr=False)

    async def open(self, timeout: float = 30.0) -> None:
        """Connect and read the response headers; events are then delivered as they arrive."""
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
        context = ssl_module.create_default_context() if parts.scheme == "https" else None
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _StreamProtocol(self), host, port, ssl=context), timeout
        )
        self._protocol = protocol
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        head = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Accept: text/event-stream", "Cache-Control: no-cache"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        assert protocol.transport is not None
        protocol.transport.write(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            response = await asyncio.wait_for(asyncio.shield(protocol.headers), timeout)
        except TimeoutError:
            self.close()
            raise NoResponseError(f"{self.url}: no response headers within {timeout:g} s") from None
        except BaseException:
            self.close()
            raise
        status = response.split(b" ", 2)[1]
        if status != b"200":
            self.close()
            raise HTTPStatusError(self.url, int(status) if status.isdigit() else 0)
        content_type = _header(response, b"content-type")
        if b"text/event-stream" not in content_type.lower():
            self.close()
            raise NotAStreamError(self.url, content_type.decode("latin-1"))

    async def run(self) -> None:
        """Until the server closes the stream (or `close`); events arrive meanwhile via `on_event`."""
        if self._protocol is not None:
            await asyncio.shield(self._protocol.closed)

    def drain(self) -> None:
        """Parse what arrived since the last call (deferred mode), with each piece's arrival time."""
        backlog, protocol = self.backlog, self._protocol
        if not backlog or protocol is None:
            return
        self.backlog = []
        for now, data in backlog:
            protocol.parse(data, now)

    def _dispatch(self, raw: bytes, now: float) -> None:
        # Kept to byte operations: with 10,000 connections in one process, parsing JSON for every
        # event would make this tool, not the server, the thing being measured.
        name, data = "message", b""
        for line in raw.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data += line[5:].lstrip()
        if not data:
            return  # a heartbeat comment
        self.events += 1
        self.on_event(self, name, data, now)

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()


def _header(head: bytes, name: bytes) -> bytes:
    """One header's value from a raw response head ("" when absent); `name` in lower case."""
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return b""
