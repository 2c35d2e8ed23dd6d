"""The composition root: `create_app(settings)` builds Redis, sync, hub and routes; nothing is global."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from relay.admin.app import create_admin_app
from relay.config import Settings, load_settings
from relay.errors import RelayError
from relay.fanout.client_streams import ClientStreams
from relay.fanout.hub import Hub
from relay.runtime.gcpolicy import policy as gc_policy
from relay.server.fastpath import FastPath
from relay.server.node import Node
from relay.server.response_cache import ResponseCache
from relay.server.responses import error_response
from relay.server.routes import client, events, ofrep, openapi, ops, sdk
from relay.server.routes import client_streams as client_stream_routes
from relay.server.routes.client_streams import PING
from relay.server.streaming import StreamGate
from relay.server.uvicorn.protocol import BoundedHttpTools, configure
from relay.store.storage import Storage, connect
from relay.store.sync import Sync
from relay.wire.changes import Change
from relay.wire.payloads import HEARTBEAT, change_events

logger = logging.getLogger(__name__)
ADMIN_OPS = ("/status", "/metrics")  # on the admin listener too; on the SDK port while sdk_port_ops


async def _relay_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RelayError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"code": "http_error", "message": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _end_streams_on_shutdown_signal(end_streams: Callable[[], object]) -> Callable[[], None]:
    """uvicorn stops accepting on SIGTERM/SIGINT, then waits for open connections; streams never end
    by themselves, so the signal also ends them (each SDK reconnects, to another node)."""
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(end_streams)
        chained = previous.get(signal.Signals(sig))
        if callable(chained):
            chained(sig, frame)

    try:
        for sig in previous:
            signal.signal(sig, handler)
    except ValueError:  # not the main thread (an embedding app): leave signals alone
        return lambda: None

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def create_app(settings: Settings, *, redis_url: str | None = None) -> ASGIApp:
    hub = Hub()
    client_streams = ClientStreams()
    syncs: list[Sync] = []  # the lifespan's, for the listener below
    nodes: list[Node] = []

    def on_change(env: str, changes: list[Change]) -> None:
        now_ms = time.time() * 1000
        for change in changes:
            if change.written_ms is not None and nodes:
                nodes[0].propagation_seconds.observe(max(0.0, now_ms - change.written_ms) / 1000)
            all_event, flags_event = change_events(change)
            hub.publish(env, "all", change.version, all_event)
            if flags_event is not None:
                hub.publish(env, "flags", change.version, flags_event)
        if changes:
            hub.publish(env, "ping", max(c.version for c in changes), PING)
            rs = syncs[0].rulesets.get(env) if syncs else None
            if rs is not None:
                client_streams.on_change(rs, changes)

    def on_reset(env: str) -> None:
        """A new epoch (Redis's data taken in place of ours, see Sync.resync): SDKs hold item
        versions that may now be ahead of Redis's, so patches would be ignored; end the
        environment's streams instead, and each SDK reconnects to a fresh `put`."""
        for node in nodes:
            node.payloads.forget(env)
            node.responses.clear()
        hub.close_all(env)
        client_streams.close_all(env)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        url = redis_url or settings.redis_url
        storage = Storage(connect(settings, url), settings.redis_prefix, audit_max=settings.audit_max_entries)
        sync = Sync(
            storage,
            version_check_interval=settings.version_check_interval,
            reconnect_max_delay=settings.reconnect_max_delay,
            command_timeout=settings.redis_timeout,
            fuse_after=settings.fuse_after,
            on_change=on_change,
            on_reset=on_reset,
        )
        syncs[:] = [sync]
        gate = StreamGate(
            max_connections=settings.max_stream_connections,
            max_lifetime=settings.stream_max_lifetime,
            jitter=settings.stream_lifetime_jitter,
            retry_after=settings.stream_retry_after,
        )
        app.state.node = node = Node(
            settings, sync, hub, client_streams, responses=ResponseCache(settings.response_cache_entries), gate=gate
        )
        nodes[:] = [node]
        task = asyncio.create_task(sync.run())

        async def heartbeats() -> None:  # one timer for every direct stream
            while True:
                await asyncio.sleep(settings.heartbeat_interval)
                hub.heartbeat(HEARTBEAT)
                client_streams.heartbeat(HEARTBEAT)

        beating = asyncio.create_task(heartbeats())
        unwatch = gc_policy.watch_pauses()

        def drain() -> None:
            gate.draining = True
            hub.close_all()
            client_streams.close_all()

        restore = _end_streams_on_shutdown_signal(drain)
        try:
            try:  # start serving once loaded, or after a while without Redis (then /readyz says 503)
                await asyncio.wait_for(asyncio.shield(sync.loaded.wait()), 10)
            except TimeoutError:
                logger.warning("Redis not loaded after 10 s; serving, not ready")
            yield
        finally:
            restore()
            unwatch()
            beating.cancel()
            hub.close_all()
            client_streams.close_all()
            task.cancel()
            await storage.close()

    app = Starlette(
        routes=[
            *sdk.routes,
            *client.routes,
            *client_stream_routes.routes,
            *ofrep.routes,
            *events.routes,
            *(r for r in ops.routes if settings.sdk_port_ops or r.path not in ADMIN_OPS),
            *openapi.routes,
        ],
        lifespan=lifespan,
        exception_handlers={RelayError: _relay_error, HTTPException: _http_error},
    )
    return FastPath(app, app.state)  # the hot GETs in front of the routes


def create_admin(settings: Settings, sdk: ASGIApp, *, redis_url: str | None = None) -> Starlette | None:
    """The admin listener's app (relay.admin), serving the `sdk` node's /status and /metrics too; None when
    `admin_listen` is empty."""
    if not settings.admin_listen:
        return None
    inner = sdk.app if isinstance(sdk, FastPath) else None
    return create_admin_app(settings, redis_url=redis_url, sdk_app=inner if isinstance(inner, Starlette) else None)


def bounded_protocol(settings: Settings) -> type[BoundedHttpTools]:
    """uvicorn's HTTP protocol class with this node's request-head limits (relay.server.uvicorn.protocol)."""
    return configure(settings.max_head_bytes, settings.max_headers, settings.head_timeout)


def app_from_environment() -> ASGIApp:
    """For `uvicorn --factory` with several workers: settings from the file and RELAY_* variables."""
    settings = load_settings()
    bounded_protocol(settings)  # this worker process's copy of the protocol class
    return create_app(settings)
