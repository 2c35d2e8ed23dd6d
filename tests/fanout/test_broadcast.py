"""relay.fanout.broadcast: a change becomes the right event on each kind of stream (once, pre-encoded),
its propagation time is recorded, and a new epoch ends the environment's streams and caches."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry

from relay.evaluation import parse_context, parse_flag, parse_segment
from relay.fanout.broadcast import PING, Broadcast
from relay.fanout.client_streams import ClientStreams
from relay.fanout.hub import Hub, Sink
from relay.fanout.put_cache import ServerPayloads
from relay.server.response_cache import ResponseCache
from relay.store.ruleset import Ruleset
from relay.store.state import State
from relay.wire import codec
from relay.wire.changes import Change
from relay.wire.clientside import for_browsers
from relay.wire.sse import HEARTBEAT

ON = {"on": True, "variations": [False, True], "offVariation": 0, "fallthrough": {"variation": 1}, "clientSide": True}
USER = parse_context({"kind": "user", "key": "ann"})


class Node:
    """A node's fan-out, built as the composition root builds it, with one stream of each kind."""

    def __init__(self) -> None:
        self.state, self.hub, self.streams = State(), Hub(), ClientStreams()
        self.payloads, self.responses, self.registry = ServerPayloads(), ResponseCache(), CollectorRegistry()
        self.broadcast = Broadcast(self.state, self.hub, self.streams, self.payloads, self.responses, self.registry)
        for env in ("prod", "dev"):
            rs = self.state.rulesets[env] = Ruleset(env)
            rs.replace(
                {"f": parse_flag({"key": "f", "version": 1, **ON})}, {"s": parse_segment({"key": "s", "version": 1})}, 1
            )
        self.received: dict[tuple[str, str], list[bytes]] = {}
        self.ended: list[tuple[str, str]] = []
        for env in ("prod", "dev"):
            for kind in ("all", "flags", "ping"):
                self.hub.attach(self.sink(env, kind))
            group = self.streams.group(self.state.rulesets[env], USER, for_browsers, False)
            self.streams.attach(group, self.sink(env, "client"))

    def sink(self, env: str, kind: str) -> Sink:
        got = self.received.setdefault((env, kind), [])
        return Sink(env, kind, lambda data: got.append(data) is None, 1, lambda: self.ended.append((env, kind)))

    def change(self, kind: str, key: str, at: int, written_ms: int | None = None, **data: Any) -> Change:
        """A change of prod at data version `at`, applied to its ruleset as the sync does first."""
        parse = parse_flag if kind == "flag" else parse_segment
        item = parse({"key": key, **data})
        change = Change("prod", at, kind, key, item, written_ms)
        self.state.rulesets["prod"].apply(change)
        return change

    def propagations(self) -> float:
        return self.registry.get_sample_value("relay_propagation_seconds_count") or 0.0


def test_a_flag_change_reaches_every_kind_of_stream_of_its_environment() -> None:
    node = Node()
    change = node.change("flag", "f", 2, version=2, **{**ON, "on": False})
    node.broadcast.on_change("prod", [change])
    got = node.received
    assert got[("prod", "all")] == [b'event: patch\ndata: {"path":"/flags/f","data":' + _json(change) + b"}\n\n"]
    assert got[("prod", "flags")] == [b'event: patch\ndata: {"path":"/f","data":' + _json(change) + b"}\n\n"]
    assert got[("prod", "ping")] == [PING]
    assert len(got[("prod", "client")]) == 1 and got[("prod", "client")][0].startswith(
        b'event: patch\ndata: {"key":"f"'
    )
    assert b'"value":false' in got[("prod", "client")][0]  # evaluated: off serves variation 0
    assert all(not events for (env, _), events in got.items() if env == "dev")
    assert node.hub.events_sent == 3 and node.ended == []


def test_a_segment_change_is_no_flags_event_and_one_ping_for_several_changes() -> None:
    node = Node()
    changes = [
        node.change("segment", "s", 2, version=2, included=["bob"]),
        node.change("flag", "g", 3, version=1, **ON),
    ]
    node.broadcast.on_change("prod", changes)
    got = node.received
    assert [e.split(b"\n")[1][:30] for e in got[("prod", "all")]] == [
        b'data: {"path":"/segments/s","d',
        b'data: {"path":"/flags/g","data',
    ]
    assert [e.split(b"\n")[1][:20] for e in got[("prod", "flags")]] == [b'data: {"path":"/g","']
    assert got[("prod", "ping")] == [PING]  # one for the batch
    assert b'"key":"g"' in b"".join(got[("prod", "client")])  # the new flag pushed to the browser


def test_a_delete_is_a_delete_event() -> None:
    node = Node()
    change = node.change("flag", "f", 2, version=2, deleted=True)
    node.broadcast.on_change("prod", [change])
    assert node.received[("prod", "all")] == [b'event: delete\ndata: {"path":"/flags/f","version":2}\n\n']
    assert node.received[("prod", "flags")] == [b'event: delete\ndata: {"path":"/f","version":2}\n\n']
    assert node.received[("prod", "client")] == [b'event: delete\ndata: {"key":"f","version":2}\n\n']


def test_no_change_no_event() -> None:
    node = Node()
    node.broadcast.on_change("prod", [])
    assert not any(node.received.values()) and node.hub.events_sent == 0


def test_propagation_is_timed_from_the_write_for_changes_that_carry_one() -> None:
    node = Node()
    written = int(time.time() * 1000) - 40
    node.broadcast.on_change("prod", [node.change("flag", "f", 2, written_ms=written, version=2, **ON)])
    assert node.propagations() == 1.0
    assert 0.04 <= (node.registry.get_sample_value("relay_propagation_seconds_sum") or 0) < 5
    node.broadcast.on_change("prod", [node.change("flag", "f", 3, version=3, **ON)])  # from a resync: no time
    assert node.propagations() == 1.0


def test_a_new_epoch_ends_the_environment_s_streams_and_forgets_its_bodies() -> None:
    node = Node()
    rs = node.state.rulesets["prod"]
    put = node.payloads.put_all(rs)
    assert node.payloads.put_all(rs) is put  # cached for the data version
    node.responses.put(("prod", 1), b"{}")
    node.broadcast.on_reset("prod")
    assert sorted(node.ended) == [("prod", "all"), ("prod", "client"), ("prod", "flags"), ("prod", "ping")]
    assert node.hub.count("prod") == 0 and node.streams.count("prod") == (0, 0)
    assert node.hub.count("dev") == 3 and node.streams.count("dev") == (1, 1)
    assert node.payloads.put_all(rs) is not put and node.responses.get(("prod", 1)) is None


def test_keep_alives_and_shutdown_reach_every_stream() -> None:
    node = Node()
    node.broadcast.heartbeat()
    assert all(events == [HEARTBEAT] for events in node.received.values()) and len(node.received) == 8
    node.broadcast.close_all()
    assert len(node.ended) == 8 and node.hub.count() == 0 and node.streams.count() == (0, 0)


def _json(change: Change) -> bytes:
    return codec.dumps(change.item.data)
