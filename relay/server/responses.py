"""How routes answer a RelayError: its code and message as JSON, with its status."""

from __future__ import annotations

from starlette.responses import JSONResponse

from relay.errors import RelayError


def error_response(e: RelayError) -> JSONResponse:
    """What every route answers for a RelayError: its code and message, with its status."""
    return JSONResponse({"code": e.code, "message": str(e)}, status_code=e.status_code)
