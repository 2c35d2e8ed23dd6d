"""The composition root: `create_app(settings)` builds Redis, sync, hub and routes; nothing is global.

Wiring only: what a change becomes on the streams is relay.fanout.broadcast's, what a node serves
from is relay.store.state, and every setting reaches its user through a constructor here."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import FrameType

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from relay.admin.app import create_admin_app
from relay.config import Settings, load_settings
from relay.errors import RelayError
from relay.fanout.broadcast import Broadcast
from relay.fanout.client_streams import ClientStreams
from relay.fanout.hub import Hub
from relay.fanout.put_cache import ServerPayloads
from relay.runtime.gcpolicy import GCPolicy
from relay.runtime.logs import Throttled
from relay.server.fastpath import FastPath
from relay.server.node import Node
from relay.server.ratelimit import RateLimiter
from relay.server.response_cache import ResponseCache
from relay.server.responses import JsonResponse, error_response
from relay.server.routes import client, events, ofrep, openapi, ops, sdk
from relay.server.routes import client_streams as client_stream_routes
from relay.server.streaming import StreamGate
from relay.server.uvicorn.direct_write import ResponseWriter
from relay.server.uvicorn.protocol import BoundedHttpTools, HeadLimits, bounded
from relay.store import memory
from relay.store.events import POOL_WAIT, EventSink
from relay.store.state import State
from relay.store.storage import RedisError, Storage, connect
from relay.store.sync import Sync
from relay.store.trouble import trouble

logger = logging.getLogger(__name__)
ADMIN_OPS = ("/status", "/metrics")  # on the admin listener too; on the SDK port while sdk_port_ops


async def _relay_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RelayError)
    return error_response(exc)


def _redis_error(log: Throttled) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A Redis failure no layer below turned into relay's error: the same JSON 503 + Retry-After,
    and one log line per kind of trouble every few seconds, never a traceback per request."""

    async def handler(request: Request, exc: Exception) -> Response:
        error = trouble(exc)
        path = request.url.path
        log.warning(error.condition, "%s %s answered 503: %s: %s", request.method, path, error, error.detail)
        return error_response(error)

    return handler


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JsonResponse({"code": "http_error", "message": exc.detail}, status_code=exc.status_code, headers=exc.headers)


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


def create_app(
    settings: Settings,
    *,
    redis_url: str | None = None,
    gc_policy: GCPolicy | None = None,
    direct_write: bool = True,
) -> ASGIApp:
    """The node's ASGI app. `gc_policy`: the process's one (relay.runtime.gcpolicy); a new one if not
    given. `direct_write=False` sends every fast-path response as ASGI messages
    (relay.server.uvicorn.direct_write writes them to uvicorn's transport in one piece otherwise)."""
    gc_policy = GCPolicy() if gc_policy is None else gc_policy
    hub = Hub()
    client_streams = ClientStreams(settings.client_stream_context_bytes)
    redis_log = Throttled(logging.getLogger("relay.redis"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        url = redis_url or settings.redis_url
        prefix, audit_max = settings.redis_prefix, settings.audit_max_entries
        # Three clients, three pools: the sync loop (pub/sub, loads), the write path and event
        # ingestion never wait on each other, and event traffic can never make the node stale.
        storage = Storage(connect(settings, url), prefix, audit_max=audit_max)
        write_storage = Storage(connect(settings, url), prefix, audit_max=audit_max)
        events_pool = connect(
            settings,
            settings.events_redis_url or url,
            max_connections=settings.events_redis_connections,
            pool_timeout=POOL_WAIT,
        )
        events = EventSink(
            Storage(events_pool, prefix),
            max_entries=settings.events_max_entries,
            max_bytes=settings.events_max_bytes,
            log=redis_log,
        )
        app.state.write_storage = write_storage  # for the admin API and embedders: the write path's own pool
        state = State()
        payloads = ServerPayloads()
        responses = ResponseCache(settings.response_cache_entries)
        registry = CollectorRegistry()
        broadcast = Broadcast(state, hub, client_streams, payloads, responses, registry)
        sync = Sync(
            storage,
            state=state,
            version_check_interval=settings.version_check_interval,
            reconnect_max_delay=settings.reconnect_max_delay,
            command_timeout=settings.redis_timeout,
            fuse_after=settings.fuse_after,
            on_change=broadcast.on_change,
            on_reset=broadcast.on_reset,
        )
        app.state.sync = sync  # for tests and embedders; the routes see only the node
        gate = StreamGate(
            max_connections=settings.max_stream_connections,
            max_lifetime=settings.stream_max_lifetime,
            jitter=settings.stream_lifetime_jitter,
            retry_after=settings.stream_retry_after,
            gc_policy=gc_policy,
        )
        node = app.state.node = Node(
            settings,
            state,
            hub,
            events,
            client_streams,
            responses=responses,
            payloads=payloads,
            registry=registry,
            gate=gate,
            event_limits=RateLimiter(settings.events_rate_limit, settings.events_rate_burst),
        )
        task = asyncio.create_task(sync.run())
        watching = asyncio.create_task(
            memory.watch(
                write_storage,
                None if settings.events_redis_url else events,
                events_max_bytes=settings.events_max_bytes,
                publish=lambda warnings: setattr(node, "warnings", warnings),
            )
        )
        beating = asyncio.create_task(broadcast.keep_alive(settings.heartbeat_interval))
        unwatch = gc_policy.watch_pauses()

        def drain() -> None:
            gate.draining = True
            broadcast.close_all()

        restore = _end_streams_on_shutdown_signal(drain)
        try:
            try:  # start serving once loaded, or after a while without Redis (then /readyz says 503)
                await asyncio.wait_for(asyncio.shield(state.loaded.wait()), 10)
            except TimeoutError:
                logger.warning("Redis not loaded after 10 s; serving, not ready")
            yield
        finally:
            restore()
            unwatch()
            beating.cancel()
            watching.cancel()
            broadcast.close_all()
            task.cancel()
            for client in (storage, write_storage, events.storage):
                await client.close()

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
        exception_handlers={RelayError: _relay_error, RedisError: _redis_error(redis_log), HTTPException: _http_error},
    )
    writer = ResponseWriter() if direct_write else None
    return FastPath(app, app.state, writer)  # the hot GETs in front of the routes


def create_admin(settings: Settings, sdk: ASGIApp, *, redis_url: str | None = None) -> Starlette | None:
    """The admin listener's app (relay.admin), serving the `sdk` node's /status and /metrics too; None when
    `admin_listen` is empty."""
    if not settings.admin_listen:
        return None
    inner = sdk.app if isinstance(sdk, FastPath) else None
    return create_admin_app(settings, redis_url=redis_url, sdk_app=inner if isinstance(inner, Starlette) else None)


def bounded_protocol(settings: Settings) -> Callable[..., BoundedHttpTools]:
    """uvicorn's `http=`: its HTTP protocol with this node's request-head limits (relay.server.uvicorn.protocol).
    With `--workers N` it travels to each worker in uvicorn's config, limits included."""
    return bounded(
        HeadLimits(settings.max_head_bytes, settings.max_headers, settings.head_timeout, settings.body_timeout)
    )


def app_from_environment() -> ASGIApp:
    """For `uvicorn --factory` with several workers: settings from the file and RELAY_* variables."""
    return create_app(load_settings())
