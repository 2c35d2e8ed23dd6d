"""OFREP routes: single-flag and bulk evaluation, with CORS for browsers and ETags for bulk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from time import perf_counter

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.environments import Environment
from relay.access.keys import credential
from relay.errors import OfrepError, RelayError, ValidationError
from relay.evaluation import Flag
from relay.server.body import read_body
from relay.server.cors import cors_headers, preflight
from relay.server.node import Node, node_of
from relay.wire import codec
from relay.wire.clientside import context_key, for_browsers, for_mobile
from relay.wire.ofrep import evaluation, to_context

METHODS = "POST, OPTIONS"
EXPOSE = "ETag, Date"


def _everything(flag: Flag) -> bool:
    return True


def _audience(node: Node, request: Request) -> tuple[Environment, Callable[[Flag], bool]]:
    """Who is asking: the SDK key sees every flag, the mobile key mobile flags, the client-side ID
    client-side flags."""
    key = credential(request.headers.get("authorization")) or request.headers.get("x-api-key")
    if not key:
        raise OfrepError(401, "UNAUTHORIZED", "no credential")
    keys = node.state.keys
    for kind, audience in (("sdk", _everything), ("mobile", for_mobile)):
        env = keys.find(kind, key)
        if env is not None:
            return env, audience
    env = keys.by_client_id(key)
    if env is not None:
        if env.secure_mode:  # OFREP has no place for the secure-mode hash: refuse, never skip the check
            raise OfrepError(403, "FORBIDDEN", "secure mode is on: the client-side ID cannot evaluate through OFREP")
        return env, for_browsers
    raise OfrepError(401, "UNAUTHORIZED", "unknown credential")


def _json(request: Request, status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    response = Response(codec.dumps(body), status_code=status, media_type="application/json", headers=headers)
    response.headers.update(cors_headers(request, METHODS, EXPOSE))
    return response


async def _body(request: Request, node: Node) -> object:
    try:
        return codec.loads(await read_body(request, node.settings.max_body_bytes), what="body")
    except ValidationError as e:
        raise OfrepError(400, "PARSE_ERROR", str(e)) from None


async def evaluate_one(request: Request) -> Response:
    node = node_of(request)
    key = request.path_params["key"]
    try:
        env, audience = _audience(node, request)
        rs = node.ruleset(env)
        ctx = to_context(await _body(request, node))
        flag = rs.flags.get(key)
        if flag is None or flag.deleted or not audience(flag):
            raise OfrepError(404, "FLAG_NOT_FOUND", f'flag "{key}" not found')
        started = perf_counter()
        result = rs.snapshot.evaluate(key, ctx)
        node.evaluation_timers["ofrep"].observe(perf_counter() - started)
        status, body = evaluation(key, flag, result)
        return _json(request, status, body)
    except OfrepError as e:
        return _error(request, e, key)
    except RelayError as e:
        return _json(request, e.status_code, {"key": key, "errorCode": "GENERAL", "errorDetails": str(e)})


def _error(request: Request, e: OfrepError, key: str | None = None) -> Response:
    if e.status_code in (401, 403):
        return _json(request, e.status_code, {"errorDetails": e.details})
    body = {"errorCode": e.code, "errorDetails": e.details}
    return _json(request, e.status_code, {"key": key, **body} if key is not None else body)


async def evaluate_all(request: Request) -> Response:
    node = node_of(request)
    try:
        env, audience = _audience(node, request)
        rs = node.ruleset(env)
        ctx = to_context(await _body(request, node))
    except OfrepError as e:
        return _error(request, e)
    except RelayError as e:
        return _json(request, e.status_code, {"errorCode": "GENERAL", "errorDetails": str(e)})
    scope = f"{env.key}:{rs.epoch}:{rs.version}:{audience.__name__}:".encode() + context_key(ctx)
    etag = '"' + hashlib.sha1(scope, usedforsecurity=False).hexdigest()[:20] + '"'
    if request.headers.get("if-none-match") == etag:
        response = Response(status_code=304, headers={"ETag": etag})
        response.headers.update(cors_headers(request, METHODS, EXPOSE))
        return response
    started = perf_counter()
    results = rs.snapshot.evaluate_all(ctx, audience)
    node.evaluation_timers["ofrep_bulk"].observe(perf_counter() - started)
    items = [evaluation(key, rs.flags[key], result)[1] for key, result in results.items()]
    return _json(request, 200, {"flags": items}, headers={"ETag": etag})


routes = [
    Route("/ofrep/v1/evaluate/flags/{key}", evaluate_one, methods=["POST"]),
    Route("/ofrep/v1/evaluate/flags", evaluate_all, methods=["POST"]),
    Route("/ofrep/v1/evaluate/flags/{key}", preflight(METHODS, EXPOSE), methods=["OPTIONS"]),  # type: ignore[arg-type]
    Route("/ofrep/v1/evaluate/flags", preflight(METHODS, EXPOSE), methods=["OPTIONS"]),  # type: ignore[arg-type]
]
