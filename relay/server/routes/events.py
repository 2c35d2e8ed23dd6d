"""Analytics events from SDKs: accepted (202), made compact and appended to a bounded Redis stream
per environment, so SDKs never log errors and experiments keep their data.

Each credential's posts are rate-limited on each node (429 + Retry-After beyond it); only what
experiments read is stored (relay.wire.events: feature and custom events, context keys only),
the rest counted on /status; diagnostic events are counted, not stored. Redis trouble is a JSON
503 with Retry-After (relay.store.events logs it, one line per kind of trouble every few seconds)."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.environments import Environment
from relay.errors import RateLimited, RedisUnavailable, ValidationError
from relay.server.body import read_body
from relay.server.cors import preflight
from relay.server.node import Node, node_of
from relay.server.routes.client import browser
from relay.store.events import Appended
from relay.wire import codec
from relay.wire.events import compact_batch

# A transparent 1x1 GIF, for browsers that cannot send CORS requests.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


async def _store(node: Node, env: Environment, kind: str, source: str, request: Request, body: bytes) -> Response:
    data = codec.loads(body, what="body")
    if kind == "analytics" and not isinstance(data, list):
        raise ValidationError("body", "expected a JSON array of events")
    if kind == "diagnostic" and not isinstance(data, dict):
        raise ValidationError("body", "expected a JSON object")
    counts = node.event_counts
    if kind == "diagnostic":  # an SDK's configuration and platform: nothing an experiment reads
        counts["diagnostic"] += 1
        return Response(status_code=202)
    batch = compact_batch(data)
    node.event_fates.update(batch.dropped)
    if not batch.stored:  # summaries and index events only: the usual flush without experiments
        counts["nothing_to_store"] += 1
        return Response(status_code=202)
    try:
        appended = await node.events.append(
            env.key,
            source=source,
            payload_id=request.headers.get("x-launchdarkly-payload-id", "")[:64],
            events=batch.events,
            now_ms=int(time.time() * 1000),
        )
    except RedisUnavailable:
        counts["unavailable"] += 1
        raise
    counts[appended.name.lower()] += 1
    if appended is Appended.STORED:
        node.event_fates["stored"] += batch.stored
    return Response(status_code=202)


def _authorized(node: Node, request: Request, source: str) -> tuple[Environment, str]:
    """The environment, and the credential the post is rate-limited by."""
    if source == "browser":
        env = node.environment_for_client_id(request.path_params["env_id"].removesuffix(".gif"))
        return env, f"client:{env.key}"
    env, key_hash = node.authorize(request, "sdk" if source == "server" else "mobile")
    return env, f"{source}:{key_hash}"


def _limited(node: Node, credential: str) -> None:
    try:
        node.event_limits.take(credential)  # before the body is read: a refused post costs little
    except RateLimited:
        node.event_counts["rate_limited"] += 1
        raise


def _route(kind: str, source: str) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        node = node_of(request)
        env, credential = _authorized(node, request, source)
        _limited(node, credential)
        body = await read_body(request, node.settings.max_body_bytes)
        node.event_limits.charge(credential, len(body))
        return await _store(node, env, kind, source, request, body)

    return handler


async def pixel(request: Request) -> Response:
    node = node_of(request)
    env, credential = _authorized(node, request, "browser")
    _limited(node, credential)
    encoded = request.query_params.get("d", "")
    try:
        body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)) if encoded else b"[]"
    except (binascii.Error, ValueError):
        raise ValidationError("d", "not valid base64") from None
    await _store(node, env, "analytics", "browser", request, body)
    return Response(PIXEL, media_type="image/gif")


_post = "POST, OPTIONS"
routes = [
    Route("/bulk", _route("analytics", "server"), methods=["POST"]),
    Route("/diagnostic", _route("diagnostic", "server"), methods=["POST"]),
    Route("/events/bulk/{env_id}", browser(_route("analytics", "browser"), _post), methods=["POST"]),
    Route("/events/diagnostic/{env_id}", browser(_route("diagnostic", "browser"), _post), methods=["POST"]),
    Route("/events/bulk/{env_id}", preflight(_post), methods=["OPTIONS"]),  # type: ignore[arg-type]
    Route("/events/diagnostic/{env_id}", preflight(_post), methods=["OPTIONS"]),  # type: ignore[arg-type]
    Route("/a/{env_id}", browser(pixel, "GET, OPTIONS"), methods=["GET"]),
    Route("/mobile/events/bulk", _route("analytics", "mobile"), methods=["POST"]),
    Route("/mobile/events", _route("analytics", "mobile"), methods=["POST"]),
    Route("/mobile", _route("analytics", "mobile"), methods=["POST"]),
    Route("/mobile/events/diagnostic", _route("diagnostic", "mobile"), methods=["POST"]),
]
