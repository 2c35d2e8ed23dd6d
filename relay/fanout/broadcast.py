"""From the sync's changes to every stream: what each kind of stream gets, and when they all end.

The sync reports changes (`on_change`) and new epochs (`on_reset`); this turns a change into an
`/all` event, a `/flags` event for flags, a `ping`, and re-evaluations for the client streams, and
times it from its write in Redis. Keep-alives and ending every stream at shutdown are here too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from prometheus_client import CollectorRegistry, Histogram

from relay.fanout.client_streams import ClientStreams
from relay.fanout.hub import Hub
from relay.fanout.put_cache import ServerPayloads
from relay.store.state import State
from relay.wire import sse
from relay.wire.changes import Change
from relay.wire.payloads import change_events
from relay.wire.sse import HEARTBEAT

# A ping stream's one event: "something changed, fetch again" (the mobile and browser ping streams).
PING = sse.event("ping", b" ")


class Cache(Protocol):
    """Bodies built from the data that a new epoch invalidates (the server's evalx response cache)."""

    def clear(self) -> None: ...


class Broadcast:
    """The fan-out policy of one node, built by the composition root with what it writes to."""

    def __init__(
        self,
        state: State,
        hub: Hub,
        client_streams: ClientStreams,
        payloads: ServerPayloads,
        responses: Cache,
        registry: CollectorRegistry,
    ) -> None:
        self.state = state
        self.hub = hub
        self.client_streams = client_streams
        self.payloads = payloads
        self.responses = responses
        self.propagation_seconds = Histogram(
            "relay_propagation_seconds",
            "From a change's write in Redis to its events queued on this node's streams",
            registry=registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
        )

    def on_change(self, env: str, changes: list[Change]) -> None:
        """Each change as one pre-encoded event per stream kind, then one ping, then the client streams."""
        hub = self.hub
        now_ms = time.time() * 1000
        for change in changes:
            if change.written_ms is not None:
                self.propagation_seconds.observe(max(0.0, now_ms - change.written_ms) / 1000)
            all_event, flags_event = change_events(change)
            hub.publish(env, "all", change.version, all_event)
            if flags_event is not None:
                hub.publish(env, "flags", change.version, flags_event)
        if changes:
            hub.publish(env, "ping", max(c.version for c in changes), PING)
            rs = self.state.rulesets.get(env)
            if rs is not None:
                self.client_streams.on_change(rs, changes)

    def on_reset(self, env: str) -> None:
        """A new epoch (Redis's data taken in place of ours, see Sync.resync): SDKs hold item
        versions that may now be ahead of Redis's, so patches would be ignored; end the
        environment's streams instead, and each SDK reconnects to a fresh `put`."""
        self.payloads.forget(env)
        self.responses.clear()
        self.hub.close_all(env)
        self.client_streams.close_all(env)

    def heartbeat(self) -> None:
        """A keep-alive on every stream; a stream that cannot take it is dropped."""
        self.hub.heartbeat(HEARTBEAT)
        self.client_streams.heartbeat(HEARTBEAT)

    async def keep_alive(self, interval: float) -> None:
        """`heartbeat` every `interval` seconds, until cancelled (one timer for every stream)."""
        while True:
            await asyncio.sleep(interval)
            self.heartbeat()

    def close_all(self) -> None:
        """End every stream (shutdown): each SDK reconnects, to another node."""
        self.hub.close_all()
        self.client_streams.close_all()
