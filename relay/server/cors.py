"""CORS for browser routes only (LaunchDarkly Relay's rules), with headers built once."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from relay.server.responses import RawHeaders

ALLOW_HEADERS = (
    "Cache-Control,Content-Type,Content-Length,Accept-Encoding,X-LaunchDarkly-User-Agent,"
    "X-LaunchDarkly-Payload-ID,X-LaunchDarkly-Wrapper,X-LaunchDarkly-Event-Schema,X-LaunchDarkly-Tags,"
    "If-None-Match,Authorization,X-API-Key"
)


_CACHE: dict[tuple[str, str, str], tuple[dict[str, str], RawHeaders]] = {}


def cors_headers(request: Request, methods: str, expose: str = "Date") -> dict[str, str]:
    """The CORS headers for this origin, built once per (origin, methods, exposed headers)."""
    return _cached(request.headers.get("origin"), methods, expose)[0]


def raw_cors_headers(origin: str | None, methods: str, expose: str = "Date") -> RawHeaders:
    """The same headers as ASGI raw headers (lowercased names, in the same order), for a response
    written straight to `send`: what `with_cors` adds to a Starlette response. Do not modify."""
    return _cached(origin, methods, expose)[1]


def _cached(origin: str | None, methods: str, expose: str) -> tuple[dict[str, str], RawHeaders]:
    origin = origin or "*"
    key = (origin, methods, expose)
    entry = _CACHE.get(key)
    if entry is None:
        if len(_CACHE) > 1024:  # origins are attacker-chosen: keep the cache bounded
            _CACHE.clear()
        headers = _build(origin, methods, expose)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        entry = _CACHE[key] = (headers, raw)
    return entry


def _build(origin: str, methods: str, expose: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Credentials": "false",
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Expose-Headers": expose,
        "Access-Control-Max-Age": "300",
        "Vary": "Origin",
    }


def with_cors(response: Response, request: Request, methods: str, expose: str = "Date") -> Response:
    response.headers.update(cors_headers(request, methods, expose))
    return response


def preflight(methods: str, expose: str = "Date") -> object:
    async def handler(request: Request) -> Response:
        return Response(status_code=200, headers=cors_headers(request, methods, expose))

    return handler
