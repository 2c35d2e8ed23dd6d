"""The bounded protocol: each connection holds the limits it was made with, and refuses beyond them
with these exact bytes; nothing process-wide changes, and the limits survive the trip to a worker."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from relay.app import bounded_protocol
from relay.config import Settings
from relay.server.uvicorn.protocol import BoundedHttpTools, HeadLimits, bounded


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = self.eof = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8030)}.get(name, default)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("a refused request never reaches the app")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _connect(factory: Any, loop: asyncio.AbstractEventLoop) -> tuple[BoundedHttpTools, _Transport]:
    config = Config(_app, log_level="warning")
    protocol = factory(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    transport = _Transport()
    protocol.connection_made(transport)
    return protocol, transport


def _reply(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n" % len(body) + body
    )


def test_a_head_over_this_connection_s_limit_gets_431(loop: asyncio.AbstractEventLoop) -> None:
    small, small_transport = _connect(bounded(HeadLimits(100, 100, 10.0)), loop)
    large, large_transport = _connect(bounded(HeadLimits(65_536, 100, 10.0)), loop)
    head = b"GET / HTTP/1.1\r\nHost: relay\r\nX-Big: " + b"x" * 200  # still arriving
    small.data_received(head)
    large.data_received(head)
    body = b'{"code":"headers_too_large","message":"request head over 100 bytes"}'
    assert small_transport.written == [_reply(b"431 Request Header Fields Too Large", body)]
    assert small_transport.eof  # half-closed, to linger
    assert large_transport.written == [] and not large_transport.eof


def test_more_headers_than_this_connection_allows_get_431(loop: asyncio.AbstractEventLoop) -> None:
    protocol, transport = _connect(bounded(HeadLimits(65_536, 2, 10.0)), loop)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: relay\r\nA: 1\r\nB: 2\r\n\r\n")
    body = b'{"code":"headers_too_large","message":"more than 2 headers"}'
    assert transport.written == [_reply(b"431 Request Header Fields Too Large", body)]


def test_a_head_not_complete_in_time_gets_408(loop: asyncio.AbstractEventLoop) -> None:
    protocol, transport = _connect(bounded(HeadLimits(65_536, 100, 0.5)), loop)
    protocol.data_received(b"GET / HTTP/1.1\r\nHo")
    protocol._head_timed_out()  # (what the deadline's timer calls)
    body = b'{"code":"request_timeout","message":"no complete request head within 0.5 s"}'
    assert transport.written == [_reply(b"408 Request Timeout", body)]


def test_the_limits_are_each_connection_s_and_the_class_is_untouched(loop: asyncio.AbstractEventLoop) -> None:
    one, _ = _connect(bounded(HeadLimits(1_000, 10, 1.0)), loop)
    two, _ = _connect(bounded(HeadLimits(2_000, 20, 2.0)), loop)
    assert (one.max_head_bytes, one.max_headers, one.head_timeout) == (1_000, 10, 1.0)
    assert (two.max_head_bytes, two.max_headers, two.head_timeout) == (2_000, 20, 2.0)
    assert not any(hasattr(BoundedHttpTools, name) for name in ("max_head_bytes", "max_headers", "head_timeout"))


def test_the_protocol_pickles_with_its_limits_for_each_worker(loop: asyncio.AbstractEventLoop) -> None:
    # `relay serve --workers N`: uvicorn pickles its config, `http=` included, for each worker.
    settings = Settings(max_head_bytes=4_096, max_headers=7, head_timeout=3.0)
    factory = pickle.loads(pickle.dumps(bounded_protocol(settings)))
    protocol, _ = _connect(factory, loop)
    assert type(protocol) is BoundedHttpTools
    assert (protocol.max_head_bytes, protocol.max_headers, protocol.head_timeout) == (4_096, 7, 3.0)
