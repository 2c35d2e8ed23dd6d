"""relay.fanout.client_streams: evaluated streams grouped by distinct context, re-evaluated once per
group on a change; a group that empties and is made anew never leaves a stream without changes."""

from __future__ import annotations

from relay.evaluation import parse_context, parse_flag
from relay.fanout.client_streams import ClientStreams
from relay.fanout.hub import Sink
from relay.store.ruleset import Ruleset
from relay.wire.changes import Change
from relay.wire.clientside import for_browsers

ON = {"on": True, "variations": [False, True], "offVariation": 0, "fallthrough": {"variation": 1}, "clientSide": True}
USER = parse_context({"kind": "user", "key": "ann"})


def _ruleset() -> Ruleset:
    rs = Ruleset("prod")
    rs.replace({"f": parse_flag({"key": "f", "version": 1, **ON})}, {}, 1)
    return rs


def _sink(received: list[bytes]) -> Sink:
    return Sink("prod", "client", lambda data: received.append(data) is None, 1, lambda: None)


def _toggle_off(rs: Ruleset) -> list[Change]:
    change = Change("prod", 2, "flag", "f", parse_flag({"key": "f", "version": 2, **ON, "on": False}))
    rs.apply(change)
    return [change]


def test_one_evaluation_per_group_and_a_patch_to_each_of_its_streams() -> None:
    rs, streams = _ruleset(), ClientStreams()
    a, b = [], []
    group = streams.group(rs, USER, for_browsers, False)
    streams.attach(group, _sink(a))
    streams.attach(streams.group(rs, USER, for_browsers, False), _sink(b))
    assert streams.count() == (2, 1)
    streams.on_change(rs, _toggle_off(rs))
    assert streams.evaluations == 1
    assert len(a) == len(b) == 1 and b'"value":false' in a[0]


def test_a_stream_attaching_to_an_emptied_group_joins_the_newer_group_of_its_context() -> None:
    # Y takes its first event from group G1 while X is G1's last stream; X leaves (G1 is forgotten),
    # Z arrives and makes G2 for the same context; then Y attaches. Y must join G2, and G2 must stay
    # the one the next change reaches: Z used to miss every change from then on.
    rs, streams = _ruleset(), ClientStreams()
    x, y, z = [], [], []
    g1 = streams.group(rs, USER, for_browsers, False)
    x_sink = _sink(x)
    streams.attach(g1, x_sink)
    y_group = streams.group(rs, USER, for_browsers, False)  # Y's first event, before it attaches
    streams.detach(g1, x_sink)  # X leaves: G1 is empty and forgotten
    g2 = streams.group(rs, USER, for_browsers, False)  # Z's group: made anew
    assert g2 is not g1
    streams.attach(g2, _sink(z))
    joined = streams.attach(y_group, _sink(y))  # Y attaches late
    assert joined is g2
    assert streams.count() == (2, 1)
    streams.on_change(rs, _toggle_off(rs))
    assert len(y) == 1 and len(z) == 1
    assert not x


def test_a_context_s_bytes_count_once_per_group_and_are_freed_with_it() -> None:
    from relay.wire.clientside import context_key

    rs, size = _ruleset(), len(context_key(USER))
    streams = ClientStreams(max_context_bytes=size)
    other = parse_context({"kind": "user", "key": "bob"})
    sinks = [_sink([]) for _ in range(3)]
    assert streams.admits("prod", USER, for_browsers, False)
    g1 = streams.group(rs, USER, for_browsers, False)
    streams.attach(g1, sinks[0])
    streams.attach(streams.group(rs, USER, for_browsers, False), sinks[1])
    assert streams.context_bytes == size  # two streams, one context
    assert streams.admits("prod", USER, for_browsers, False)  # held already: no more bytes
    assert not streams.admits("prod", other, for_browsers, False) and streams.refused == 1
    y_group = streams.group(rs, USER, for_browsers, False)
    streams.detach(g1, sinks[0])
    streams.detach(g1, sinks[1])  # emptied and forgotten
    assert streams.context_bytes == 0
    streams.attach(y_group, sinks[2])  # a late stream puts its group back: counted again
    assert streams.context_bytes == size
    streams.detach(y_group, sinks[2])
    assert streams.context_bytes == 0 and streams.admits("prod", other, for_browsers, False)
