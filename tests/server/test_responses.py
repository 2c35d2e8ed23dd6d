"""JSON answers go through relay.wire.codec and are what Starlette's JSONResponse would send."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import JSONResponse

from relay.errors import NotFoundError, ValidationError
from relay.server.responses import JsonResponse, error_response


@pytest.mark.parametrize(
    ("content", "status", "headers"),
    [
        ({"status": "ok"}, 200, None),
        ({"ready": False, "stale": ["prod"], "diverged": [], "redis_connected": True}, 503, None),
        ({"code": "too_many_streams", "message": "at 20000"}, 503, {"Retry-After": "7"}),
        ({"code": "http_error", "message": "Method Not Allowed"}, 405, {"Allow": "GET, OPTIONS"}),
        ({"message": 'naïve "quoted" \\ / \n\t\x01 ✓', "n": [1, 2.5, None, -3], "nested": {"z": {}}}, 200, None),
    ],
    ids=["healthz", "not-ready", "refusal", "http-error", "escapes"],
)
def test_same_status_headers_and_body_as_starlette(content: Any, status: int, headers: dict[str, str] | None) -> None:
    ours, theirs = JsonResponse(content, status, headers), JSONResponse(content, status, headers)
    assert ours.body == theirs.body
    assert ours.status_code == theirs.status_code and ours.raw_headers == theirs.raw_headers


def test_a_relay_error_is_its_code_and_message_with_its_status() -> None:
    response = error_response(ValidationError("flags.x", "bad"))
    assert isinstance(response, JsonResponse) and response.status_code == 400
    assert response.body == b'{"code":"invalid_input","message":"flags.x: bad"}'
    assert error_response(NotFoundError("gone")).status_code == 404
