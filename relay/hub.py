"""Fan-out of changes to stream connections, never waiting on a slow client.

Each connection has a bounded queue of pre-encoded events tagged with their data version.
`publish` never blocks: a connection whose queue is full is dropped (its SDK reconnects and gets a
fresh `put`), so one stuck client cannot slow the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

Event = tuple[int, bytes]  # (data version, encoded SSE bytes); version -1 ends the stream


@dataclass(eq=False)
class Sink:
    """A stream written to directly by `publish`: no task wakes per event (the hot fan-out path)."""

    env: str
    kind: str
    write: Callable[[bytes], bool]  # False: the client is not keeping up
    since: int  # data version already sent (in the first event)
    end: Callable[[], None]


@dataclass(eq=False)
class Connection:
    env: str
    kind: str
    queue: asyncio.Queue[Event] = field(repr=False)
    dropped: bool = False


class Hub:
    def __init__(self, max_queue: int = 256) -> None:
        self.max_queue = max_queue
        self._subs: dict[tuple[str, str], set[Connection]] = defaultdict(set)
        self._sinks: dict[tuple[str, str], set[Sink]] = defaultdict(set)
        self.events_sent = 0
        self.dropped = 0

    def subscribe(self, env: str, kind: str) -> Connection:
        conn = Connection(env, kind, asyncio.Queue(self.max_queue))
        self._subs[(env, kind)].add(conn)
        return conn

    def attach(self, sink: Sink) -> None:
        self._sinks[(sink.env, sink.kind)].add(sink)

    def detach(self, sink: Sink) -> None:
        sinks = self._sinks.get((sink.env, sink.kind))
        if sinks is not None:
            sinks.discard(sink)

    def _drop_sink(self, sink: Sink) -> None:
        self.dropped += 1
        self.detach(sink)
        sink.end()
        logger.info("dropped a %s stream on %s: its socket buffer is full", sink.kind, sink.env)

    def heartbeat(self, payload: bytes) -> None:
        """Write a keep-alive to every direct stream (one timer for all of them)."""
        for sinks in list(self._sinks.values()):
            for sink in list(sinks):
                if not sink.write(payload):
                    self._drop_sink(sink)

    def unsubscribe(self, conn: Connection) -> None:
        subs = self._subs.get((conn.env, conn.kind))
        if subs is not None:
            subs.discard(conn)

    def count(self, env: str | None = None, kind: str | None = None) -> int:
        return sum(
            len(conns)
            for (e, k), conns in self._subs.items()
            if (env is None or e == env) and (kind is None or k == kind)
        )

    def publish(self, env: str, kind: str, version: int, payload: bytes) -> None:
        """Write one encoded event to every direct stream of (env, kind), and queue it on the rest."""
        for sink in list(self._sinks.get((env, kind), ())):
            if version > sink.since:
                if sink.write(payload):
                    self.events_sent += 1
                else:
                    self._drop_sink(sink)
        for conn in list(self._subs.get((env, kind), ())):
            try:
                conn.queue.put_nowait((version, payload))
                self.events_sent += 1
            except asyncio.QueueFull:
                self._drop(conn)

    def _drop(self, conn: Connection) -> None:
        conn.dropped = True
        self.dropped += 1
        self.unsubscribe(conn)
        while not conn.queue.empty():
            conn.queue.get_nowait()
        conn.queue.put_nowait((-1, b""))
        logger.info("dropped a %s stream on %s: it fell %d events behind", conn.kind, conn.env, self.max_queue)

    def close_all(self) -> None:
        """End every stream (shutdown)."""
        for sinks in list(self._sinks.values()):
            for sink in list(sinks):
                self.detach(sink)
                sink.end()
        for conns in list(self._subs.values()):
            for conn in list(conns):
                self._drop(conn)
