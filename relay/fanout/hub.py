"""Fan-out of changes to stream connections, never waiting on a slow client.

A change is encoded once and `publish` writes those bytes into every connection's socket at once
(`relay.server.streaming.write_now`), without waking a task per connection. A connection whose
socket buffer is full — its client is not reading — is dropped on the spot (its SDK reconnects and
gets a fresh `put`), so one stuck client cannot slow the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from relay.fanout.registry import Registry
from relay.wire import http


class ChunkWriter(Protocol):
    """A stream's socket written to without its server's `send` (relay.server.uvicorn.streams
    makes one of uvicorn's response cycle): `publish` frames each event as an HTTP/1.1 chunk once
    and writes the same bytes to every stream that has one."""

    def write_chunk(self, chunk: bytes) -> bool:
        """Write one framed chunk now; False, having written nothing, if the connection is gone or
        its client is not reading (the stream is then dropped)."""
        ...


@dataclass(eq=False, slots=True)  # (slots: `publish` reads two fields of every sink per event)
class Sink:
    """A stream written to directly by `publish`: no task wakes per event (the hot fan-out path)."""

    env: str
    kind: str
    write: Callable[[bytes], bool]  # False: the client is not keeping up
    since: int  # data version already sent (in the first event)
    end: Callable[[], None]
    # Where the stream's server allows it, its socket (relay.server.uvicorn.streams.chunk_writer):
    # `publish` then writes chunks there itself, framed once for all such streams.
    direct: ChunkWriter | None = None


class Hub(Registry[tuple[str, str], Sink]):
    """Server-side and ping streams by (environment, stream kind): `heartbeat`, `close_all` and
    the dropping of slow clients are the registry's (relay.fanout.registry)."""

    def __init__(self) -> None:
        super().__init__()
        self.events_sent = 0

    def _env_of(self, key: tuple[str, str]) -> str:
        return key[0]

    def attach(self, sink: Sink) -> None:
        self._add((sink.env, sink.kind), sink)

    def detach(self, sink: Sink) -> None:
        self._remove((sink.env, sink.kind), sink)

    def _drop_sink(self, sink: Sink) -> None:
        self._drop((sink.env, sink.kind), sink)

    def count(self, env: str | None = None, kind: str | None = None) -> int:
        return sum(
            len(conns)
            for (e, k), conns in self._sinks.items()
            if (env is None or e == env) and (kind is None or k == kind)
        )

    def publish(self, env: str, kind: str, version: int, payload: bytes) -> None:
        """Write one encoded event to every stream of (env, kind); drop the ones not keeping up."""
        chunk = None  # HTTP/1.1 chunked framing, built once, and only if a stream takes the direct path
        sent = 0  # (counted here, added once: an attribute update per stream is measurable at 10,000)
        for sink in list(self._sinks.get((env, kind), ())):
            if version <= sink.since:
                continue
            direct = sink.direct
            if direct is not None:
                if chunk is None:
                    chunk = http.chunk(payload)
                if direct.write_chunk(chunk):
                    sent += 1
                else:
                    self._drop_sink(sink)
            elif sink.write(payload):
                sent += 1
            else:
                self._drop_sink(sink)
        self.events_sent += sent
