"""Server-side SDK routes (LaunchDarkly's FDv1): the `/all` and `/flags` streams, and polling.

Authorized by the environment's SDK key in `Authorization`. A stream sends `put` on connect, then
every change in data-version order as pre-encoded `patch`/`delete` events, and a comment line as a
heartbeat when idle. The body is chunked (uvicorn does so when no length is set), which the Python
SDK needs to see events as they come.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.errors import NotFoundError
from relay.server.node import Node, node_of
from relay.server.streaming import DirectStream
from relay.store.ruleset import Ruleset
from relay.wire.payloads import item_json


def stream(node: Node, request: Request, kind: str) -> Response:
    """A server-side stream (`/all` or `/flags`) for an authorized request."""
    env, key_hash = node.authorize(request, "sdk")
    node.ruleset(env)  # 503 now if the environment is not loaded yet
    put = node.payloads.put_all if kind == "all" else node.payloads.put_flags

    def snapshot() -> tuple[int, bytes]:
        current = node.ruleset(env)
        return current.version, put(current)

    attach, detach = node.guard("sdk", key_hash, node.hub.attach, node.hub.detach)  # ended when the key expires
    return DirectStream(env.key, kind, snapshot, attach, detach, node.gate)


async def stream_all(request: Request) -> Response:
    return stream(node_of(request), request, "all")


async def stream_flags(request: Request) -> Response:
    return stream(node_of(request), request, "flags")


def _etag(rs: Ruleset, what: str) -> str:
    # The epoch too: after `relay env accept` a data version can come round again with other data.
    digest = hashlib.sha1(f"{rs.env}:{rs.epoch}:{rs.version}:{what}".encode(), usedforsecurity=False).hexdigest()
    return f'"relay-{digest[:16]}"'


def _polled(request: Request, what: str, body: bytes, rs: Ruleset) -> Response:
    etag = _etag(rs, what)
    headers = {"ETag": etag, "Cache-Control": "private, max-age=0"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


async def latest_all(request: Request) -> Response:
    node = node_of(request)
    env = node.environment_for(request, "sdk")
    rs = node.ruleset(env)
    return _polled(request, "all", node.payloads.all_data(rs), rs)


async def latest_flags(request: Request) -> Response:
    node = node_of(request)
    env = node.environment_for(request, "sdk")
    rs = node.ruleset(env)
    return _polled(request, "flags", node.payloads.flags_map(rs), rs)


async def _one(request: Request, kind: str) -> Response:
    node = node_of(request)
    env = node.environment_for(request, "sdk")
    rs = node.ruleset(env)
    key = request.path_params["key"]
    item = (rs.flags if kind == "flag" else rs.segments).get(key)
    if item is None or item.deleted:
        raise NotFoundError(f'no {kind} "{key}"')
    return _polled(request, f"{kind}:{key}:{item.version}", item_json(item.data), rs)


async def latest_flag(request: Request) -> Response:
    return await _one(request, "flag")


async def latest_segment(request: Request) -> Response:
    return await _one(request, "segment")


routes = [
    Route("/all", stream_all, methods=["GET"]),
    Route("/flags", stream_flags, methods=["GET"]),
    Route("/sdk/latest-all", latest_all, methods=["GET"]),
    Route("/sdk/latest-flags", latest_flags, methods=["GET"]),
    Route("/sdk/latest-flags/{key}", latest_flag, methods=["GET"]),
    Route("/sdk/latest-segments/{key}", latest_segment, methods=["GET"]),
]
