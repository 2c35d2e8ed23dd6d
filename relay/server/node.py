"""What every handler reaches through `request.app.state.node`: built once by the app's lifespan.

The node reads the data through `state` (relay.store.state, which the sync keeps current) and
writes SDK events through `events`, each credential's posts bounded by `event_limits`; it never
sees the sync or Redis itself. `warnings` are what an operator must fix (Redis's memory policy),
shown on /status."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from starlette.datastructures import QueryParams
from starlette.requests import Request

from relay.access.environments import Environment, hash_key
from relay.access.keys import credential
from relay.access.securemode import SecureMode
from relay.config import Settings
from relay.errors import NotFoundError, Unauthorized, UnavailableError
from relay.evaluation import Context
from relay.fanout.client_streams import ClientStreams
from relay.fanout.hub import Hub
from relay.fanout.put_cache import ServerPayloads
from relay.server.credentials import Attach, StreamCredentials
from relay.server.histogram import LoopHistogram
from relay.server.ratelimit import RateLimiter
from relay.server.response_cache import ResponseCache
from relay.server.streaming import StreamGate
from relay.store.events import EventSink
from relay.store.ruleset import Ruleset
from relay.store.state import State


@dataclass
class Node:
    settings: Settings
    state: State
    hub: Hub
    events: EventSink
    client_streams: ClientStreams = field(default_factory=ClientStreams)
    responses: ResponseCache = field(default_factory=ResponseCache)
    payloads: ServerPayloads = field(default_factory=ServerPayloads)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    gate: StreamGate = field(default_factory=StreamGate)
    event_limits: RateLimiter = field(default_factory=lambda: RateLimiter(0, 1))
    # Event posts by outcome (stored, duplicate, rate_limited, …), and events by fate: "stored", or the
    # kind they were left out as (relay.wire.events: summary, index, …).
    event_counts: Counter[str] = field(default_factory=Counter)
    event_fates: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.secure_mode = SecureMode(self.settings.secret_key)
        self.stream_credentials = StreamCredentials(self._still_valid)
        self.evaluation_seconds = LoopHistogram(
            "relay_evaluation_seconds",
            "Time to evaluate a request's flags (evalx, OFREP)",
            ["route"],
            registry=self.registry,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
        )
        # Each route's child made once (observed with time.perf_counter around the evaluation).
        self.evaluation_timers = {r: self.evaluation_seconds.labels(r) for r in ("evalx", "ofrep", "ofrep_bulk")}

    def environment_for(self, request: Request, kind: str) -> Environment:
        """The environment whose SDK ("sdk") or mobile ("mobile") key authorizes the request."""
        return self.authorize(request, kind)[0]

    def authorize(self, request: Request, kind: str) -> tuple[Environment, str]:
        """The environment and the hash of the SDK or mobile key that authorizes the request."""
        return self.authorize_header(request.headers.get("authorization"), kind)

    def authorize_header(self, authorization: str | None, kind: str) -> tuple[Environment, str]:
        """`authorize` given the request's Authorization header (its first, as Starlette reads it)."""
        key = credential(authorization)
        if key is None:
            raise Unauthorized("missing Authorization header (the SDK key)")
        env = self.state.keys.find(kind, key)
        if env is None:
            raise Unauthorized(f"unknown or expired {'SDK' if kind == 'sdk' else 'mobile'} key")
        return env, hash_key(key)

    def check_secure_mode(self, query_string: bytes, env: Environment, ctx: Context) -> str | None:
        """For a browser request: nothing to check unless the environment is in secure mode; then
        the hash of the SDK key its `h` was made with, or an error. Before any cache lookup.
        `query_string` is the raw one (`scope["query_string"]`), parsed only in secure mode."""
        if not env.secure_mode:
            return None
        h = QueryParams(query_string).get("h")
        return self.secure_mode.check(env, ctx.fully_qualified_key, h, _now_ms())

    def guard(self, kind: str, key_hash: str | None, attach: Attach, detach: Attach) -> tuple[Attach, Attach]:
        """A stream's attach/detach, ending the stream once its credential expires (if it has one)."""
        return (attach, detach) if key_hash is None else self.stream_credentials.guard(kind, key_hash, attach, detach)

    def _still_valid(self, kind: str, key_hash: str) -> bool:
        return self.state.keys.live(kind, key_hash, _now_ms())

    def environment_for_client_id(self, client_side_id: str) -> Environment:
        env = self.state.keys.by_client_id(client_side_id)
        if env is None:
            raise NotFoundError("unknown client-side ID")
        return env

    def ruleset(self, env: Environment) -> Ruleset:
        rs = self.state.rulesets.get(env.key)
        if rs is None or not rs.ready:
            raise UnavailableError(f'environment "{env.key}" is not loaded yet')
        return rs


def _now_ms() -> int:
    return int(time.time() * 1000)


def node_of(request: Request) -> Node:
    return request.app.state.node  # type: ignore[no-any-return]
