"""Reading request bodies within the configured limit."""

from __future__ import annotations

import gzip
import io
import zlib

from starlette.requests import ClientDisconnect, Request

from relay.errors import BodyTooLarge, UnsupportedMediaType, ValidationError


async def read_body(request: Request, limit: int) -> bytes:
    """The body (gunzipped if sent gzipped), or TooLarge past `limit` bytes, before or after inflating."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body over {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"request body over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # gone, or refused for a body slower than body_timeout: no one to answer
        raise ValidationError("body", "the connection ended before the request body was complete") from None
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(limit + 1)
        except (OSError, EOFError, zlib.error):  # zlib.error: a gzip header over a corrupt deflate stream
            raise ValidationError("body", "invalid gzip data") from None
        if len(body) > limit:
            raise BodyTooLarge(f"request body over {limit} bytes once inflated")
    return body


def require_json(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType("expected Content-Type: application/json")
