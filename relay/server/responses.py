"""How routes answer JSON: `JsonResponse` (every JSON body through relay.wire.codec), a RelayError
as JSON, and bodies written straight to ASGI `send`.

`RawResponse` is for the fast path (relay.server.fastpath): what a Starlette `Response` would send,
without building one (no rendering, no header object); where uvicorn's own `send` is behind `send`,
the fast path has it written to the transport in one piece (relay.server.uvicorn.direct_write).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from relay.errors import RelayError
from relay.wire import codec

RawHeaders = list[tuple[bytes, bytes]]
JSON_TYPE = b"application/json"
_JSON_TYPE = (b"content-type", JSON_TYPE)


class JsonResponse(Response):
    """Starlette's JSONResponse (same status, headers and compact body), encoded by relay.wire.codec
    rather than the standard library's json. A Starlette `Response`, so middleware and CORS
    (relay.server.cors.with_cors) can add headers; `RawResponse` is the fast path's."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return codec.dumps(content)


def error_response(e: RelayError) -> JsonResponse:
    """What every route answers for a RelayError: its code and message, with its status (and
    Retry-After where the error says when to try again: a rate limit, Redis trouble)."""
    headers = None if e.retry_after is None else {"retry-after": str(e.retry_after)}
    return JsonResponse({"code": e.code, "message": str(e)}, status_code=e.status_code, headers=headers)


def json_headers(body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()) -> RawHeaders:
    """A JSON body's headers as `Response(body, media_type="application/json")` has them, then `extra`."""
    return [(b"content-length", str(len(body)).encode("latin-1")), _JSON_TYPE, *extra]


@dataclass(slots=True)
class RawResponse:
    """A JSON body with its headers (`json_headers`); `extra` is a list reused across responses
    (one origin's CORS headers), which lets relay.server.uvicorn.direct_write cache its rendered
    form when the fast path writes it there (relay.server.fastpath.FastPath); else it is sent."""

    status: int
    body: bytes
    extra: Sequence[tuple[bytes, bytes]] = ()

    @property
    def headers(self) -> RawHeaders:
        return json_headers(self.body, self.extra)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})
