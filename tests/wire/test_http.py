"""HTTP/1.1 framing written to sockets by relay itself: heads and chunks, byte for byte."""

from __future__ import annotations

import pytest
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from relay.loadtest import floor
from relay.wire import http


def test_status_lines_are_uvicorn_s() -> None:
    # relay.server.uvicorn.direct_write writes uvicorn's own; everything else writes these.
    assert {status: http.status_line(status) for status in range(100, 600)} == STATUS_LINE
    assert http.status_line(431) == b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    assert http.status_line(599) == b"HTTP/1.1 599 \r\n"


def test_a_head_is_the_status_line_the_headers_as_given_and_a_blank_line() -> None:
    head = http.head(408, [(b"content-type", b"application/json"), (b"Content-Length", b"2")])
    assert head == b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n"
    assert http.header_lines([]) == b""


@pytest.mark.parametrize("size", [0, 1, 15, 16, 300, 70_000])
def test_a_chunk_is_its_size_in_lowercase_hex_then_the_data(size: int) -> None:
    data = b"x" * size
    assert http.chunk(data) == f"{size:x}".encode() + b"\r\n" + data + b"\r\n"
    assert http.chunk(b"x" * 300).startswith(b"12c\r\n")


def test_the_reference_floor_writes_the_same_bytes_as_before() -> None:
    assert floor.HEAD == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    assert floor.PUT == b'41\r\nevent: put\ndata: {"path":"/","data":{"flags":{},"segments":{}}}\n\n\r\n'
