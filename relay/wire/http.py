"""HTTP/1.1 framing for the bytes relay writes to a socket itself: a response head, a body chunk.

Used where relay answers without an HTTP server's help (relay.server.uvicorn's canned refusals
and its direct writes, the load tool's reference floor) and where the fan-out frames one chunk
for every stream (relay.fanout.hub).
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

_KNOWN = frozenset(s.value for s in HTTPStatus)


def status_line(status: int) -> bytes:
    """`HTTP/1.1 <status> <reason>`, with the standard reason phrase (none for a code without one),
    as uvicorn writes it."""
    phrase = HTTPStatus(status).phrase if status in _KNOWN else ""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode())


def header_lines(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Headers as `name: value` lines, as given (names are not lowercased, nothing is checked)."""
    return b"".join(b"%s: %s\r\n" % (name, value) for name, value in headers)


def head(status: int, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A whole response head: status line, headers, and the blank line before the body."""
    return status_line(status) + header_lines(headers) + b"\r\n"


def chunk(data: bytes) -> bytes:
    """`data` as one chunk of a `Transfer-Encoding: chunked` body (size in hex, CRLF, data, CRLF)."""
    return b"%x\r\n%s\r\n" % (len(data), data)
