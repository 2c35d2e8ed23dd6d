"""Analytics events from SDKs: accepted (202) and appended to a capped Redis stream per environment,
so SDKs never log errors and experiments keep their data."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.environments import Environment
from relay.errors import ValidationError
from relay.server.body import read_body
from relay.server.cors import preflight
from relay.server.node import Node, node_of
from relay.server.routes.client import browser
from relay.wire import codec

# A transparent 1x1 GIF, for browsers that cannot send CORS requests.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


async def _store(node: Node, env: Environment, kind: str, source: str, request: Request, body: bytes) -> Response:
    data = codec.loads(body, what="body")
    if kind == "analytics" and not isinstance(data, list):
        raise ValidationError("body", "expected a JSON array of events")
    if kind == "diagnostic" and not isinstance(data, dict):
        raise ValidationError("body", "expected a JSON object")
    await node.events.append(
        env.key,
        kind=kind,
        source=source,
        payload_id=request.headers.get("x-launchdarkly-payload-id", "")[:128],
        body=body,
        now_ms=int(time.time() * 1000),
    )
    return Response(status_code=202)


def _route(kind: str, source: str) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        node = node_of(request)
        if source == "server":
            env = node.environment_for(request, "sdk")
        elif source == "mobile":
            env = node.environment_for(request, "mobile")
        else:
            env = node.environment_for_client_id(request.path_params["env_id"])
        body = await read_body(request, node.settings.max_body_bytes)
        return await _store(node, env, kind, source, request, body)

    return handler


async def pixel(request: Request) -> Response:
    node = node_of(request)
    env = node.environment_for_client_id(request.path_params["env_id"].removesuffix(".gif"))
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
