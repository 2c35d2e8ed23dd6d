"""Client-side stream routes: `/eval` (browsers), `/meval` (mobile), and the `ping` streams."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.environments import Environment
from relay.fanout.broadcast import PING
from relay.fanout.hub import Sink
from relay.server.cors import preflight
from relay.server.node import Node, node_of
from relay.server.routes.client import browser, request_context, with_reasons
from relay.server.streaming import DirectStream
from relay.wire.clientside import Audience, for_browsers, for_mobile


async def _evaluated_stream(
    request: Request, env: Environment, audience: Audience, key_hash: str | None = None
) -> Response:
    node = node_of(request)
    node.ruleset(env)  # 503 now if the environment is not loaded yet
    ctx = await request_context(request, node)
    if audience is for_browsers:  # secure mode: the hash's SDK key then authorizes the stream
        key_hash = node.check_secure_mode(request.scope["query_string"], env, ctx)
    reasons = with_reasons(request.scope["query_string"])
    streams = node.client_streams
    if not streams.admits(env.key, ctx, audience, reasons):  # a new distinct context past the budget
        message = f"this node holds its budget of {streams.max_context_bytes} bytes of distinct stream contexts"
        return node.gate.busy("too_many_contexts", message)
    group = None

    def snapshot() -> tuple[int, bytes]:
        nonlocal group
        rs = node.ruleset(env)
        group = streams.group(rs, ctx, audience, reasons)
        return rs.version, group.put(rs)

    def attach(sink: Sink) -> None:
        nonlocal group
        assert group is not None
        group = streams.attach(group, sink)  # (the newer group of this context, if there is one)

    def detach(sink: Sink) -> None:
        assert group is not None
        streams.detach(group, sink)

    guarded = node.guard("sdk" if audience is for_browsers else "mobile", key_hash, attach, detach)
    return DirectStream(env.key, "client", snapshot, *guarded, node.gate)


async def eval_stream(request: Request) -> Response:
    env = node_of(request).environment_for_client_id(request.path_params["env_id"])
    return await _evaluated_stream(request, env, for_browsers)


async def mobile_eval_stream(request: Request) -> Response:
    env, key_hash = node_of(request).authorize(request, "mobile")
    return await _evaluated_stream(request, env, for_mobile, key_hash)


def _ping_stream(node: Node, env: Environment, key_hash: str | None = None) -> Response:
    def snapshot() -> tuple[int, bytes]:
        return node.ruleset(env).version, PING

    node.ruleset(env)
    attach, detach = node.guard("mobile", key_hash, node.hub.attach, node.hub.detach)
    return DirectStream(env.key, "ping", snapshot, attach, detach, node.gate)


async def ping_stream(request: Request) -> Response:
    node = node_of(request)
    return _ping_stream(node, node.environment_for_client_id(request.path_params["env_id"]))


async def mobile_ping_stream(request: Request) -> Response:
    node = node_of(request)
    return _ping_stream(node, *node.authorize(request, "mobile"))


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
