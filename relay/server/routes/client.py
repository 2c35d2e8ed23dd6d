"""Browser and mobile routes: evaluated flags for one context (`evalx`), goals, CORS.

Browsers name their environment by the public client-side ID in the path and see only flags
available to client-side SDKs; mobile apps authorize with the mobile key and see only flags
available to mobile. The ruleset itself never leaves the node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.environments import Environment
from relay.errors import RelayError
from relay.evaluation import Context
from relay.server.body import read_body, require_json
from relay.server.cors import preflight, with_cors
from relay.server.node import Node, node_of
from relay.server.responses import error_response
from relay.wire.clientside import (
    Audience,
    context_from_json,
    context_key,
    decode_context,
    evalx_body,
    for_browsers,
    for_mobile,
)

Handler = Callable[[Request], Awaitable[Response]]
BROWSER_METHODS = "GET, REPORT, OPTIONS"


def browser(handler: Handler, methods: str = BROWSER_METHODS) -> Handler:
    """CORS on every browser response, errors included, so a page can read why it failed."""

    async def wrapped(request: Request) -> Response:
        try:
            response = await handler(request)
        except RelayError as e:
            response = error_response(e)
        return with_cors(response, request, methods)

    return wrapped


async def request_context(request: Request, node: Node) -> Context:
    if request.method == "REPORT":
        require_json(request)
        return context_from_json(await read_body(request, node.settings.max_body_bytes))
    return decode_context(request.path_params["context"])


def evaluated(node: Node, env: Environment, ctx: Context, audience: Audience, with_reasons: bool) -> bytes:
    """The `evalx` body: from the response cache, else evaluated (and timed) and cached."""
    rs = node.ruleset(env)
    responses = node.responses
    # (No key when the cache is off: making one serializes the context.)
    key = (env.key, rs.version, audience.__name__, with_reasons, context_key(ctx)) if responses.max_entries else None
    body = None if key is None else responses.get(key)
    if body is None:
        started = perf_counter()
        results = rs.snapshot.evaluate_all(ctx, audience)
        node.evaluation_timers["evalx"].observe(perf_counter() - started)
        body = evalx_body(rs.flags, results, with_reasons)
        if key is not None:
            responses.put(key, body)
    return body


def with_reasons(query_string: bytes) -> bool:
    """`withReasons=true`, read from the raw query string (parsing query_params cost 2% of an evalx
    request); the last occurrence wins, as with Starlette's query_params."""
    if b"withReasons=" not in query_string:
        return False
    values = [p[12:] for p in query_string.split(b"&") if p.startswith(b"withReasons=")]
    return bool(values) and values[-1] == b"true"


def browser_flags(node: Node, env: Environment, ctx: Context, query_string: bytes) -> bytes:
    node.check_secure_mode(query_string, env, ctx)  # before the response cache, whose key has no `h`
    return evaluated(node, env, ctx, for_browsers, with_reasons(query_string))


def mobile_flags(node: Node, env: Environment, ctx: Context, query_string: bytes) -> bytes:
    return evaluated(node, env, ctx, for_mobile, with_reasons(query_string))


# The GET routes from their parts, shared by the Starlette routes and relay.server.fastpath.


def browser_get(node: Node, env_id: str, context: str, query_string: bytes) -> bytes:
    """`GET /sdk/evalx/{env_id}/(contexts|users)/{context}`: the body, or a RelayError."""
    env = node.environment_for_client_id(env_id)
    return browser_flags(node, env, decode_context(context), query_string)


def mobile_get(node: Node, authorization: str | None, context: str, query_string: bytes) -> bytes:
    """`GET /msdk/evalx/(contexts|users)/{context}`: the body, or a RelayError."""
    env, _ = node.authorize_header(authorization, "mobile")
    return mobile_flags(node, env, decode_context(context), query_string)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _query(request: Request) -> bytes:
    return request.scope.get("query_string", b"")  # type: ignore[no-any-return]


async def evalx(request: Request) -> Response:
    params = request.path_params
    return _json(browser_get(node_of(request), params["env_id"], params["context"], _query(request)))


async def evalx_report(request: Request) -> Response:
    node = node_of(request)
    env = node.environment_for_client_id(request.path_params["env_id"])
    ctx = await request_context(request, node)
    return _json(browser_flags(node, env, ctx, _query(request)))


async def mobile_evalx(request: Request) -> Response:
    context = request.path_params["context"]
    return _json(mobile_get(node_of(request), request.headers.get("authorization"), context, _query(request)))


async def mobile_evalx_report(request: Request) -> Response:
    node = node_of(request)
    env = node.environment_for(request, "mobile")
    ctx = await request_context(request, node)
    return _json(mobile_flags(node, env, ctx, _query(request)))


async def goals(request: Request) -> Response:
    node_of(request).environment_for_client_id(request.path_params["env_id"])
    return Response(b"[]", media_type="application/json")


_evalx = browser(evalx)
_evalx_report = browser(evalx_report)
_preflight = preflight(BROWSER_METHODS)

routes = [
    Route("/sdk/evalx/{env_id}/contexts/{context}", _evalx, methods=["GET"]),
    Route("/sdk/evalx/{env_id}/users/{context}", _evalx, methods=["GET"]),
    Route("/sdk/evalx/{env_id}/context", _evalx_report, methods=["REPORT"]),
    Route("/sdk/evalx/{env_id}/contexts", _evalx_report, methods=["REPORT"]),
    Route("/sdk/evalx/{env_id}/user", _evalx_report, methods=["REPORT"]),
    *(
        Route(path, _preflight, methods=["OPTIONS"])  # type: ignore[arg-type]
        for path in (
            "/sdk/evalx/{env_id}/contexts/{context}",
            "/sdk/evalx/{env_id}/users/{context}",
            "/sdk/evalx/{env_id}/context",
            "/sdk/evalx/{env_id}/contexts",
            "/sdk/evalx/{env_id}/user",
            "/sdk/goals/{env_id}",
        )
    ),
    Route("/sdk/goals/{env_id}", browser(goals, "GET, OPTIONS"), methods=["GET"]),
    Route("/msdk/evalx/contexts/{context}", mobile_evalx, methods=["GET"]),
    Route("/msdk/evalx/users/{context}", mobile_evalx, methods=["GET"]),
    Route("/msdk/evalx/context", mobile_evalx_report, methods=["REPORT"]),
    Route("/msdk/evalx/user", mobile_evalx_report, methods=["REPORT"]),
]
