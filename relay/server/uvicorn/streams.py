"""The fan-out's way past uvicorn's `send` (relay.fanout.hub.ChunkWriter, made of uvicorn's cycle).

At 10,000 streams, a coroutine and a join per stream per event were most of the fan-out
(docs/benchmarks.md). Where a stream's `send` is uvicorn's own, the hub frames each event as an
HTTP/1.1 chunk once and hands it to every such stream's `CycleChunkWriter`, which does what uvicorn's
`send` does for a body chunk: check the connection, write to the transport.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Send


def uvicorn_cycle(send: Send) -> Any:
    """uvicorn's response cycle behind `send` if `send` is its own bound method (nothing wraps it)
    and the response is chunked; else None."""
    cycle = getattr(send, "__self__", None)
    if getattr(cycle, "chunked_encoding", None) is not True:
        return None
    if not all(hasattr(cycle, name) for name in ("transport", "flow", "disconnected")):
        return None
    return cycle


class CycleChunkWriter:
    """A relay.fanout.hub.ChunkWriter on uvicorn's response cycle (its transport and flow control
    are the connection's, fixed for the cycle's life: read once here, not on every event)."""

    __slots__ = ("_cycle", "_flow", "_transport")

    def __init__(self, cycle: Any) -> None:
        self._cycle = cycle
        self._flow = cycle.flow
        self._transport = cycle.transport

    def write_chunk(self, chunk: bytes) -> bool:
        # As uvicorn's `send` would, minus a coroutine and a copy; False where it would have waited.
        if self._cycle.disconnected or self._flow.write_paused or self._transport.is_closing():
            return False
        self._transport.write(chunk)
        return True


def chunk_writer(send: Send) -> CycleChunkWriter | None:
    """The hub's direct way to this stream's socket, if `send` is uvicorn's own; else None (the hub
    then writes through `send`)."""
    cycle = uvicorn_cycle(send)
    return None if cycle is None else CycleChunkWriter(cycle)
