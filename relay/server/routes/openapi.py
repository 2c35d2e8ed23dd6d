"""`GET /openapi.json`: the OpenAPI document describing every relay route (package data, served as is)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@cache
def document() -> bytes:
    return resources.files("relay").joinpath("server/routes/openapi.json").read_bytes()


async def openapi(request: Request) -> Response:
    return Response(document(), media_type="application/json")


routes = [Route("/openapi.json", openapi, methods=["GET"])]
