"""The fast path: the hottest GETs dispatched in front of the Starlette app, everything else to it.

- `GET /all`, `GET /flags`: the stream gets the server's own `send`, so each event written to it
  passes through no middleware wrapper (each is a coroutine per write, per connection).
- `GET /sdk/evalx/{env_id}/(contexts|users)/{context}` and `GET /msdk/evalx/(contexts|users)/{context}`:
  the body from the same functions as the Starlette routes (relay.server.routes.client), written as two
  ASGI messages, without the router's ~40 regexes, the middleware's `send` wrappers, or a
  Request and a Response object.

Each answers exactly as its Starlette route does (tests/integration/test_fastpath.py compares
them): the same status, headers and body, CORS on browser answers and errors, a RelayError as its
JSON, and any other exception as ServerErrorMiddleware's plain 500, re-raised for the server to
log. A path is matched as Starlette matches `{param}` (a segment of one or more characters, no
slash) against `scope["path"]`, which the server has already percent-decoded. Anything else (other
methods, HEAD included; a trailing slash; another segment; a `root_path`) goes to the app.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from relay.errors import RelayError
from relay.server.cors import raw_cors_headers
from relay.server.node import Node
from relay.server.responses import RawResponse, error_response
from relay.server.routes import client, sdk
from relay.server.uvicorn.direct_write import ResponseWriter

Endpoint = Callable[[Node, Scope, Receive, tuple[str, ...]], ASGIApp]
_CONTEXT_SEGMENTS = ("contexts", "users")


def _header(scope: Scope, name: bytes) -> str | None:
    """The first header `name` (lowercase), as Starlette's `request.headers.get` reads it."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def _stream(node: Node, scope: Scope, receive: Receive, params: tuple[str, ...]) -> ASGIApp:
    return sdk.stream(node, Request(scope, receive), params[0])


def _browser_evalx(node: Node, scope: Scope, receive: Receive, params: tuple[str, ...]) -> ASGIApp:
    cors = raw_cors_headers(_header(scope, b"origin"), client.BROWSER_METHODS)
    try:
        body = client.browser_get(node, params[0], params[1], scope.get("query_string", b""))
    except RelayError as e:  # as client.browser: CORS on errors too
        response = error_response(e)
        response.raw_headers += cors  # as with_cors does: the error has none of these headers
        return response
    return RawResponse(200, body, cors)


def _mobile_evalx(node: Node, scope: Scope, receive: Receive, params: tuple[str, ...]) -> ASGIApp:
    authorization = _header(scope, b"authorization")
    body = client.mobile_get(node, authorization, params[0], scope.get("query_string", b""))
    return RawResponse(200, body)


def route(path: str) -> tuple[Endpoint, tuple[str, ...]] | None:
    """The endpoint and path parameters for a GET of `path`, or None for the Starlette app's."""
    if path == "/all" or path == "/flags":
        return _stream, (path[1:],)
    parts = path.split("/")
    n = len(parts)  # "", "sdk", "evalx", env_id, "contexts", context / "", "msdk", "evalx", "users", context
    if n == 6 and parts[1] == "sdk" and parts[2] == "evalx" and parts[4] in _CONTEXT_SEGMENTS and parts[3] and parts[5]:
        return _browser_evalx, (parts[3], parts[5])
    if n == 5 and parts[1] == "msdk" and parts[2] == "evalx" and parts[3] in _CONTEXT_SEGMENTS and parts[4]:
        return _mobile_evalx, (parts[4],)
    return None


class FastPath:
    """The ASGI app `create_app` returns: the fast routes here, everything else to `app` (the
    Starlette app, whose lifespan puts the node in `state`; until then all goes to `app`). With a
    `writer`, evalx bodies go to uvicorn's transport in one piece where they can (else, and without
    one, as ASGI messages)."""

    def __init__(self, app: ASGIApp, state: State, writer: ResponseWriter | None = None) -> None:
        self.app = app
        self.state = state
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self._fast(scope)
        if fast is None:
            await self.app(scope, receive, send)
            return
        node, endpoint, params = fast
        try:
            response = endpoint(node, scope, receive, params)
        except RelayError as e:
            response = error_response(e)
        except Exception:
            # As Starlette's ServerErrorMiddleware: a plain 500, then the exception goes on to the
            # server, which logs it ("Exception in ASGI application") and closes the connection.
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            raise
        writer = self.writer
        if writer is not None and type(response) is RawResponse and writer.write(send, scope, response):
            return
        await response(scope, receive, send)

    def _fast(self, scope: Scope) -> tuple[Node, Endpoint, tuple[str, ...]] | None:
        node: Node | None = getattr(self.state, "node", None)
        if node is None or scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            return None
        found = route(scope["path"])
        return None if found is None else (node, *found)
