"""Fan-out never waits on a slow client: a full buffer drops that connection, and only that one."""

from __future__ import annotations

from relay.evaluation import parse_context, parse_flag
from relay.fanout.client_streams import ClientStreams
from relay.fanout.hub import Hub, Sink
from relay.server.uvicorn.streams import CycleChunkWriter
from relay.store.ruleset import Change, Ruleset
from relay.wire.clientside import for_browsers


def test_a_stuck_connection_is_dropped_and_the_rest_keep_every_event() -> None:
    hub = Hub()
    received: list[bytes] = []
    ended: list[str] = []
    buffered = [0]

    def stuck_write(data: bytes) -> bool:  # its socket buffer fills after 8 events
        buffered[0] += 1
        return buffered[0] <= 8

    hub.attach(Sink("prod", "all", stuck_write, 0, lambda: ended.append("stuck")))
    hub.attach(Sink("prod", "all", lambda b: received.append(b) is None, 0, lambda: ended.append("healthy")))
    hub.attach(Sink("prod", "all", lambda b: True, 15, lambda: None))  # joined at version 15
    for version in range(1, 21):
        hub.publish("prod", "all", version, b"event %d" % version)
    assert received == [b"event %d" % v for v in range(1, 21)]  # the healthy one got all, in order
    assert ended == ["stuck"] and hub.dropped == 1 and hub.count("prod", "all") == 2
    hub.close_all()
    assert ended == ["stuck", "healthy"] and hub.count() == 0


def test_client_streams_drop_a_stuck_browser_only() -> None:
    rs = Ruleset("prod")
    flag = {"key": "f", "version": 1, "on": True, "variations": [False, True], "offVariation": 0,
            "fallthrough": {"variation": 1}, "clientSide": True}  # fmt: skip
    rs.replace({"f": parse_flag(flag)}, {}, 1)
    streams = ClientStreams()
    ctx = parse_context({"kind": "user", "key": "u"})
    received: list[bytes] = []
    ended: list[str] = []
    group = streams.group(rs, ctx, for_browsers, False)
    streams.attach(group, Sink("prod", "client", lambda b: False, 1, lambda: ended.append("stuck")))
    group = streams.group(rs, ctx, for_browsers, False)
    streams.attach(group, Sink("prod", "client", lambda b: received.append(b) is None, 1, lambda: ended.append("ok")))
    assert streams.count("prod") == (2, 1)
    for version in range(2, 12):
        item = parse_flag({**flag, "version": version, "on": version % 2 == 1})
        change = Change("prod", version, "flag", "f", item)
        rs.apply(change)
        streams.on_change(rs, [change])
    assert len(received) == 10 and all(b.startswith(b"event: patch") for b in received)
    assert ended == ["stuck"] and streams.dropped == 1 and streams.count("prod") == (1, 1)


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False


class _Flow:
    write_paused = False


class _Cycle:
    """The three attributes of uvicorn's response cycle that the hub's direct path reads
    (through relay.server.uvicorn.streams.CycleChunkWriter)."""

    def __init__(self) -> None:
        self.transport, self.flow, self.disconnected = _Transport(), _Flow(), False


def test_streams_on_uvicorn_s_send_get_chunks_written_to_their_transport() -> None:
    hub = Hub()
    fast, paused = _Cycle(), _Cycle()
    ended: list[str] = []

    def unused(data: bytes) -> bool:
        raise AssertionError("the direct path must not go through send")

    hub.attach(Sink("prod", "all", unused, 0, lambda: ended.append("fast"), CycleChunkWriter(fast)))
    hub.attach(Sink("prod", "all", unused, 0, lambda: ended.append("paused"), CycleChunkWriter(paused)))
    hub.publish("prod", "all", 1, b"event: patch\ndata: {}\n\n")
    paused.flow.write_paused = True  # its socket buffer is over the high-water mark: not reading
    hub.publish("prod", "all", 2, b"x" * 300)
    assert fast.transport.written == [b"17\r\nevent: patch\ndata: {}\n\n\r\n", b"12c\r\n" + b"x" * 300 + b"\r\n"]
    assert paused.transport.written == [b"17\r\nevent: patch\ndata: {}\n\n\r\n"]
    assert ended == ["paused"] and hub.dropped == 1 and hub.events_sent == 3


def test_the_direct_path_is_taken_only_for_uvicorn_s_own_chunked_send() -> None:
    from relay.server.uvicorn.streams import uvicorn_cycle

    class Cycle(_Cycle):
        chunked_encoding = True

        async def send(self, message: object) -> None:
            pass

    cycle = Cycle()
    assert uvicorn_cycle(cycle.send) is cycle

    async def wrapped(message: object) -> None:  # a middleware's wrapper: no way to the transport
        pass

    assert uvicorn_cycle(wrapped) is None
    cycle.chunked_encoding = False  # type: ignore[assignment]
    assert uvicorn_cycle(cycle.send) is None
