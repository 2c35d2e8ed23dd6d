"""The propagation tool's stream check: why a stream failed, counted, before anything is flipped."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from relay.loadtest import streams
from relay.loadtest.propagation import _NoBar
from relay.loadtest.sse_client import HTTPStatusError, SSEConnection

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _conn(url: str = "http://127.0.0.1:1/all", kind: str = "server") -> SSEConnection:
    return SSEConnection(url, {}, lambda *_: None, label=kind)


def test_each_failure_has_a_short_countable_name() -> None:
    assert streams.reason(HTTPStatusError("u", 401), 30) == "401 unauthorized"
    assert streams.reason(HTTPStatusError("u", 503), 30) == "503 service unavailable"
    assert streams.reason(HTTPStatusError("u", 599), 30) == "HTTP 599"
    assert streams.reason(ConnectionRefusedError(111, "Connection refused"), 30) == "connection refused"
    assert streams.reason(TimeoutError(), 2.5) == "timed out connecting (2.5 s)"
    assert streams.reason(socket.gaierror(-2, "Name or service not known"), 30) == "name not resolved"


def test_the_summary_counts_by_reason_most_frequent_first_with_kinds_when_mixed() -> None:
    failures = {_conn(kind="server"): "401 unauthorized" for _ in range(3)}
    failures |= {_conn(kind="client"): "404 not found"}
    assert streams.summary(10, failures, mixed=False) == (
        "6 of 10 streams connected: 401 unauthorized (3), 404 not found (1) — is --sdk-key the SDK key of --env?"
    )
    assert streams.summary(10, failures, mixed=True).startswith(
        "6 of 10 streams connected: 401 unauthorized (3 server), 404 not found (1 client)"
    )
    error = streams.StreamsNotReady(10, failures, mixed=False)
    assert error.connected == 6 and error.reasons == {"401 unauthorized": 3, "404 not found": 1}


async def _open_against(handler: Handler, count: int = 3, timeout: float = 0.5) -> streams.Opened:
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ready: set[SSEConnection] = set()

    def on_event(conn: SSEConnection, name: str, data: bytes, now: float) -> None:
        if name == "put":
            ready.add(conn)

    conns = [SSEConnection(f"http://127.0.0.1:{port}/all", {}, on_event, label="server") for _ in range(count)]
    async with server:
        opened = await streams.open_all(conns, ready, timeout, 10, _NoBar(), lambda some: None)
        for conn in conns:
            conn.close()
        for task in opened.tasks:
            task.cancel()
        await asyncio.sleep(0.05)  # the handlers see their clients go, and close their ends
        for writer in writers:
            writer.close()
            await writer.wait_closed()
    return opened


def test_a_web_page_instead_of_an_event_stream_is_named() -> None:
    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello")
        await writer.drain()
        writer.close()

    opened = asyncio.run(_open_against(page))
    assert not opened.live and set(opened.failures.values()) == {"not an event stream (text/html)"}


def test_a_stream_without_its_first_event_is_not_live() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        await writer.drain()
        await reader.read()

    opened = asyncio.run(_open_against(silent))
    assert not opened.live and set(opened.failures.values()) == {"no first event within 0.5 s"}


def test_streams_with_their_first_event_are_live() -> None:
    async def sse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nevent: put\ndata: {}\n\n")
        await writer.drain()
        await reader.read()

    opened = asyncio.run(_open_against(sse))
    assert len(opened.live) == 3 and not opened.failures
