"""Client-side stream routes: `/eval` (browsers), `/meval` (mobile), and the `ping` streams."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.clientside import Audience, for_browsers, for_mobile
from relay.clientstreams import Group
from relay.environments import Environment
from relay.hub import Connection
from relay.payloads import sse
from relay.server.client import browser, request_context
from relay.server.cors import preflight
from relay.server.node import Node, node_of
from relay.server.streaming import sse_response

PING = sse("ping", b" ")


async def _evaluated_stream(request: Request, env: Environment, audience: Audience) -> Response:
    node = node_of(request)
    rs = node.ruleset(env)
    ctx = await request_context(request, node)
    with_reasons = request.query_params.get("withReasons") == "true"
    group, conn, put = node.client_streams.open(rs, ctx, audience, with_reasons)

    def done(group: Group = group, conn: Connection = conn) -> None:
        node.client_streams.close(group, conn)

    return sse_response(conn, put, rs.version, node.settings.heartbeat_interval, done)


async def eval_stream(request: Request) -> Response:
    env = node_of(request).environment_for_client_id(request.path_params["env_id"])
    return await _evaluated_stream(request, env, for_browsers)


async def mobile_eval_stream(request: Request) -> Response:
    env = node_of(request).environment_for(request, "mobile")
    return await _evaluated_stream(request, env, for_mobile)


def _ping_stream(node: Node, env: Environment) -> Response:
    rs = node.ruleset(env)
    conn = node.hub.subscribe(env.key, "ping")
    return sse_response(conn, PING, rs.version, node.settings.heartbeat_interval, lambda: node.hub.unsubscribe(conn))


async def ping_stream(request: Request) -> Response:
    node = node_of(request)
    return _ping_stream(node, node.environment_for_client_id(request.path_params["env_id"]))


async def mobile_ping_stream(request: Request) -> Response:
    node = node_of(request)
    return _ping_stream(node, node.environment_for(request, "mobile"))


_eval = browser(eval_stream)
_ping = browser(ping_stream, "GET, OPTIONS")

routes = [
    Route("/eval/{env_id}/{context}", _eval, methods=["GET"]),
    Route("/eval/{env_id}", _eval, methods=["REPORT"]),
    Route("/eval/{env_id}/{context}", preflight("GET, REPORT, OPTIONS"), methods=["OPTIONS"]),  # type: ignore[arg-type]
    Route("/eval/{env_id}", preflight("GET, REPORT, OPTIONS"), methods=["OPTIONS"]),  # type: ignore[arg-type]
    Route("/ping/{env_id}", _ping, methods=["GET"]),
    Route("/ping/{env_id}", preflight("GET, OPTIONS"), methods=["OPTIONS"]),  # type: ignore[arg-type]
    Route("/meval/{context}", mobile_eval_stream, methods=["GET"]),
    Route("/meval", mobile_eval_stream, methods=["REPORT"]),
    Route("/mping", mobile_ping_stream, methods=["GET"]),
]
