"""A fast-path response written to uvicorn's transport in one piece, as uvicorn's `send` would.

uvicorn's httptools `send` checks every header against two regexes, lowercases and compares it,
and writes the head and the body separately: 11.5 us for an `evalx` response's two messages here,
against 1.3 us for writing the same bytes rendered from cached header blocks (the CORS headers
are the same for every request from one origin; uvicorn's default `date` and `server` headers
change once a second). `write` does exactly what `send` does for a complete response to a GET
(status line, default headers, the response's headers, `connection: close` when the connection
is not kept alive, the body; then the cycle's state, the close, and `on_response`), and only when
`send` is uvicorn's own (httptools) cycle in the state a fresh GET leaves it; otherwise, and for
any header uvicorn would refuse or treat specially, the caller sends the ASGI messages.
tests/integration/test_direct_write.py compares the bytes on the wire both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.types import Scope, Send

from relay.server.responses import JSON_TYPE, RawResponse
from relay.wire import http

try:  # (uvicorn's internals: without them, every response goes through `send`)
    from uvicorn.protocols.http.httptools_impl import (
        HEADER_RE,
        HEADER_VALUE_RE,
        STATUS_LINE,
        RequestResponseCycle,
    )
except ImportError:  # pragma: no cover
    RequestResponseCycle = None

Headers = Sequence[tuple[bytes, bytes]]
_SPECIAL = frozenset((b"content-length", b"transfer-encoding", b"connection"))


def render(headers: Headers) -> bytes | None:
    """`headers` as HTTP/1.1 lines, as uvicorn's `send` writes them; None where it would refuse one
    or act on it (content length, transfer encoding, connection)."""
    checked = []
    for name, value in headers:
        if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
            return None
        name = name.lower()
        if name in _SPECIAL:
            return None
        checked.append((name, value))
    return http.header_lines(checked)


class ResponseWriter:
    """Writes the fast path's responses (relay.server.responses.RawResponse) in one piece; made by
    the composition root (relay.app.create_app) unless direct writing is off. Holds the rendered
    header blocks: uvicorn's default headers, and each reused list of extra headers."""

    def __init__(self) -> None:
        self._blocks: dict[int, tuple[Headers, bytes | None]] = {}  # by id of a reused list: it, its lines
        self._defaults: list[Any] = [None, None]  # uvicorn's last default headers (by identity), their lines

    def _block(self, headers: Headers) -> bytes | None:
        """`render(headers)` for a header list the caller reuses (kept here, so its id stays its own)."""
        hit = self._blocks.get(id(headers))
        if hit is not None and hit[0] is headers:
            return hit[1]
        if len(self._blocks) > 2048:  # CORS lists are per origin, which clients choose: stay bounded
            self._blocks.clear()
        block = render(headers)
        self._blocks[id(headers)] = (headers, block)
        return block

    def write(self, send: Send, scope: Scope, response: RawResponse) -> bool:
        """Write a complete response (`content-length`, `content-type`, then its `extra`, a list
        the caller reuses) if `send` is uvicorn's and nothing stands in the way; False if the
        caller must send it."""
        cycle = getattr(send, "__self__", None)
        if RequestResponseCycle is None or type(cycle) is not RequestResponseCycle:
            return False
        if cycle.response_started or cycle.disconnected or cycle.flow.write_paused or cycle.access_log:
            return False
        status = response.status
        if scope["method"] != "GET" or status not in STATUS_LINE:
            return False
        defaults = cycle.default_headers
        if defaults is not self._defaults[0]:  # uvicorn makes a new list when the date changes
            self._defaults[:] = [defaults, render(defaults)]
        default_lines, extra_lines = self._defaults[1], self._block(response.extra)
        if default_lines is None or extra_lines is None:
            return False
        cycle.response_started = True
        cycle.waiting_for_100_continue = False
        cycle.chunked_encoding = False
        keep_alive = cycle.keep_alive
        body = response.body
        cycle.transport.write(
            b"".join(
                (
                    STATUS_LINE[status],  # uvicorn's own status lines (relay.wire.http.status_line's bytes)
                    default_lines,
                    # Formatted here, not by relay.wire.http.header_lines: this is per request.
                    b"content-length: %d\r\ncontent-type: %s\r\n" % (len(body), JSON_TYPE),
                    extra_lines,
                    b"\r\n" if keep_alive else b"connection: close\r\n\r\n",
                    body,
                )
            )
        )
        cycle.response_complete = True
        cycle.message_event.set()
        if not keep_alive:
            cycle.transport.close()
        cycle.on_response()
        return True
