"""`create_admin_app(settings)`: the admin listener's app. /api/v1 (token-authenticated), /openapi.json (this API's
document), and, when given the node's SDK app, that node's /status and /metrics (plus the admin API's own)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from functools import cache
from importlib import resources

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.sealing import sealer_for
from relay.admin.auth import TokenAuth
from relay.admin.responses import http_error, json_response, relay_error
from relay.admin.routes import routes as api_routes
from relay.admin.state import AdminState, state_of
from relay.config import Settings
from relay.errors import RelayError, UnavailableError
from relay.server.routes import ops
from relay.store.storage import Storage, connect
from relay.store.tokens import TokenStore
from relay.wire import codec

logger = logging.getLogger(__name__)


@cache
def document() -> bytes:
    """The admin API's OpenAPI document (package data)."""
    return resources.files("relay").joinpath("admin/openapi.json").read_bytes()


async def openapi(request: Request) -> Response:
    return Response(document(), media_type="application/json")


def _admin_status(state: AdminState) -> dict[str, object]:
    auth = state.auth
    return {
        "token_changes_subscribed": auth.trusted,
        "tokens_cached": auth.cached,
        "auth_failures": auth.failures,
        "rate_limited": auth.limit.refused,
    }


class _Collector:
    def __init__(self, state: AdminState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        auth = self.state.auth
        yield CounterMetricFamily("relay_admin_auth_failures", "Admin API requests refused 401", value=auth.failures)
        yield CounterMetricFamily(
            "relay_admin_rate_limited", "Admin API requests refused 429 (failed-auth limit)", value=auth.limit.refused
        )
        yield GaugeMetricFamily("relay_admin_tokens_cached", "Token records cached on this node", value=auth.cached)
        yield GaugeMetricFamily(
            "relay_admin_token_changes_subscribed", "1 while token changes are received", value=int(auth.trusted)
        )


def create_admin_app(
    settings: Settings,
    *,
    redis_url: str | None = None,
    sdk_app: Starlette | None = None,
    clock: Callable[[], float] = time.time,
    recheck_interval: float = 5.0,
) -> Starlette:
    """The admin app. Its lifespan opens its own Redis client and follows token changes; `sdk_app` (the node's
    Starlette app, inside relay.app's fast path) lends it /status and /metrics."""

    def sdk_request(request: Request) -> Request:
        """The request as the SDK app's ops routes read it (they find the node on `request.app`)."""
        if sdk_app is None or getattr(sdk_app.state, "node", None) is None:
            raise UnavailableError("this node is not started yet")
        return Request({**request.scope, "app": sdk_app}, request.receive)

    async def status(request: Request) -> Response:
        out: dict[str, object] = {}
        if sdk_app is not None:
            out = codec.loads(bytes((await ops.status(sdk_request(request))).body))
        return json_response({**out, "admin": _admin_status(state_of(request))})

    async def metrics(request: Request) -> Response:
        node_text = bytes((await ops.metrics(sdk_request(request))).body) if sdk_app is not None else b""
        admin_text = generate_latest(request.app.state.admin_registry)
        return Response(node_text + admin_text, media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        storage = Storage(
            connect(settings, redis_url or settings.redis_url),
            settings.redis_prefix,
            audit_max=settings.audit_max_entries,
        )
        tokens = TokenStore(storage, clock=clock)
        auth = TokenAuth(tokens, clock=clock, recheck_interval=recheck_interval)
        app.state.admin = state = AdminState(settings, storage, tokens, auth, sealer_for(settings.secret_key), clock)
        app.state.admin_registry = registry = CollectorRegistry()
        registry.register(_Collector(state))  # type: ignore[arg-type]
        following = asyncio.create_task(auth.run())
        try:
            yield
        finally:
            auth.stop()  # not cancelled: see TokenStore.watch
            done, _ = await asyncio.wait({following}, timeout=5)
            if not done:
                logger.warning("the token change subscription did not stop within 5 s")
            await storage.close()

    return Starlette(
        routes=[
            *api_routes,
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/status", status, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={RelayError: relay_error, HTTPException: http_error},
    )
