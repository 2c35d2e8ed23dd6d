"""The load-test SSE client: parsing deferred to `drain()` gives exactly what parsing on arrival gives."""

from __future__ import annotations

import asyncio
import random

import pytest

from relay.loadtest import sse_client
from relay.loadtest.sse_client import SSEConnection


def _chunked_stream(rng: random.Random) -> bytes:
    events = []
    for i in range(40):
        if i % 7 == 3:
            events.append(b":\n\n")  # a heartbeat comment: no event
        else:
            data = b'{"path":"/flags/f","data":{"key":"f","version":%d}}' % i
            events.append(b"event: patch\ndata: " + data + b"\n\n")
    # Chunks as servers write them: mostly one event each, sometimes two events in one chunk.
    chunks, i = [], 0
    while i < len(events):
        n = 2 if rng.random() < 0.2 else 1
        chunks.append(b"".join(events[i : i + n]))
        i += n
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)


def _pieces(stream: bytes, rng: random.Random) -> list[tuple[float, bytes]]:
    """The stream as TCP might deliver it: split anywhere, each piece with its arrival time."""
    pieces, pos, now = [], 0, 100.0
    while pos < len(stream):
        size = rng.choice([1, 3, 17, 60, 200, 1000])
        pieces.append((now, stream[pos : pos + size]))
        pos += size
        now += 0.001
    return pieces


def _received(
    pieces: list[tuple[float, bytes]], deferred: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[str, bytes, float]], int]:
    clock = [0.0]
    monkeypatch.setattr(sse_client.time, "monotonic", lambda: clock[0])

    async def run() -> tuple[list[tuple[str, bytes, float]], int]:
        got: list[tuple[str, bytes, float]] = []
        conn = SSEConnection("http://127.0.0.1/all", {}, lambda c, name, data, now: got.append((name, data, now)))
        if deferred:
            conn.backlog = []
        protocol = sse_client._StreamProtocol(conn)
        conn._protocol = protocol
        protocol.data_received(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for now, data in pieces:
            clock[0] = now
            protocol.data_received(data)
        if deferred:
            assert not got  # nothing parsed before drain()
            clock[0] = 999.0  # parsing late must not change the times
            conn.drain()
        return got, conn.arrived[0]

    return asyncio.run(run())


def test_deferred_parsing_gives_the_same_events_and_times(monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in range(20):
        rng = random.Random(seed)
        pieces = _pieces(_chunked_stream(rng), rng)
        on_arrival, _ = _received(pieces, False, monkeypatch)
        deferred, counted = _received(pieces, True, monkeypatch)
        assert counted == len(pieces)
        assert len(on_arrival) == 34 and deferred == on_arrival
