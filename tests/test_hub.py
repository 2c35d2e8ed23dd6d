"""Fan-out never waits on a slow client: a full buffer drops that connection, and only that one."""

from __future__ import annotations

import asyncio

from relay.clientside import for_browsers
from relay.clientstreams import ClientStreams
from relay.evaluation import parse_context, parse_flag
from relay.hub import Hub
from relay.ruleset import Change, Ruleset


def test_a_stuck_connection_is_dropped_and_the_rest_keep_every_event() -> None:
    async def scenario() -> None:
        hub = Hub(max_queue=8)
        stuck = hub.subscribe("prod", "all")
        healthy = hub.subscribe("prod", "all")
        received = []
        for version in range(1, 21):
            hub.publish("prod", "all", version, b"event %d" % version)
            received.append(await healthy.queue.get())  # this one keeps up
        assert [v for v, _ in received] == list(range(1, 21))
        assert stuck.dropped and hub.dropped == 1 and hub.count("prod", "all") == 1
        assert stuck.queue.get_nowait() == (-1, b"")  # its stream ends; its SDK reconnects for a fresh put

    asyncio.run(scenario())


def test_client_streams_drop_a_stuck_browser_only() -> None:
    async def scenario() -> None:
        rs = Ruleset("prod")
        flag = {"key": "f", "version": 1, "on": True, "variations": [False, True], "offVariation": 0,
                "fallthrough": {"variation": 1}, "clientSide": True}  # fmt: skip
        rs.replace({"f": parse_flag(flag)}, {}, 1)
        streams = ClientStreams(max_queue=4)
        ctx = parse_context({"kind": "user", "key": "u"})
        group, stuck, _ = streams.open(rs, ctx, for_browsers, False)
        _, healthy, _ = streams.open(rs, ctx, for_browsers, False)
        for version in range(2, 12):
            item = parse_flag({**flag, "version": version, "on": version % 2 == 1})
            change = Change("prod", version, "flag", "f", item)
            rs.apply(change)
            streams.on_change(rs, [change])
            assert (await healthy.queue.get())[0] == version
        assert stuck.dropped and streams.dropped == 1
        assert streams.count("prod") == (1, 1) and group.conns == {healthy}

    asyncio.run(scenario())
