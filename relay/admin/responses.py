"""How the admin API answers: JSON through relay.wire.codec, errors as {"code", "message"[, "path"]}, ETags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from relay.errors import PreconditionFailed, RateLimited, RelayError, Unauthorized, ValidationError
from relay.wire import codec

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(codec.dumps(body), status_code=status, headers=dict(headers or {}), media_type=JSON)


def error_body(e: RelayError) -> tuple[int, dict[str, Any]]:
    """Status and body. Validation errors are 422 here (the request was well-formed JSON the write path refused,
    with the JSON path of what it refused); the SDK routes keep their 400."""
    if isinstance(e, ValidationError):
        return 422, {"code": e.code, "message": e.reason, "path": e.path}
    return e.status_code, {"code": e.code, "message": str(e)}


def error_response(e: RelayError) -> Response:
    status, body = error_body(e)
    headers = {}
    if isinstance(e, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="relay admin"'
    if isinstance(e, RateLimited):
        headers["Retry-After"] = str(e.retry_after)
    return json_response(body, status, headers)


async def relay_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RelayError)
    return error_response(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return json_response({"code": code, "message": exc.detail}, exc.status_code, exc.headers)


def etag(version: int) -> str:
    """An item's ETag: its version, quoted (a strong validator: each version has one content)."""
    return f'"{version}"'


ANY = -1  # `If-Match: *`: the item must exist, at any version


def expected_version(request: Request) -> int | None:
    """The version If-Match requires (None: unconditional; ANY for `*`), or 0 for `If-None-Match: *` (must not
    exist). A list of tags or a weak tag cannot name one version: 412, as for a tag that does not match."""
    if (none_match := request.headers.get("if-none-match")) is not None:
        if none_match.strip() != "*":
            raise ValidationError("If-None-Match", 'only "*" (the item must not exist) is supported on writes')
        return 0
    value = request.headers.get("if-match")
    if value is None:
        return None
    if value.strip() == "*":
        return ANY
    tag = value.strip()
    if len(tag) >= 3 and tag[0] == tag[-1] == '"' and tag[1:-1].isdigit():
        return int(tag[1:-1])
    raise PreconditionFailed(f'If-Match {tag} is no ETag of this API (a quoted version such as "3")')
