"""relay.fanout.registry: the one mechanism both fan-outs use for keep-alives, ending streams and
dropping a client that is not reading."""

from __future__ import annotations

from relay.evaluation import parse_context, parse_flag
from relay.fanout.client_streams import ClientStreams
from relay.fanout.hub import Hub, Sink
from relay.fanout.registry import Registry
from relay.store.ruleset import Ruleset
from relay.wire.clientside import for_browsers


class ByName(Registry[tuple[str, str], Sink]):
    """A registry keyed by (env, name), remembering which keys emptied."""

    def __init__(self) -> None:
        super().__init__()
        self.emptied: list[tuple[str, str]] = []

    def _env_of(self, key: tuple[str, str]) -> str:
        return key[0]

    def _emptied(self, key: tuple[str, str]) -> None:
        self.emptied.append(key)


class Conn:
    """A stream's two ends as the registry sees them: what was written, and whether it ended."""

    def __init__(self, env: str = "prod", accepts: int = 1_000) -> None:
        self.received: list[bytes] = []
        self.ended = False
        self.accepts = accepts  # writes its socket takes before its buffer is full
        self.sink = Sink(env, "all", self.write, 0, self.end)

    def write(self, data: bytes) -> bool:
        if len(self.received) >= self.accepts:
            return False
        self.received.append(data)
        return True

    def end(self) -> None:
        self.ended = True


def test_a_heartbeat_reaches_every_stream_and_drops_the_stuck_ones() -> None:
    reg = ByName()
    ok, stuck, other = Conn(), Conn(accepts=1), Conn("dev")
    reg._add(("prod", "x"), ok.sink)
    reg._add(("prod", "x"), stuck.sink)
    reg._add(("dev", "y"), other.sink)
    reg.heartbeat(b":\n\n")
    reg.heartbeat(b":\n\n")
    assert ok.received == other.received == [b":\n\n", b":\n\n"]
    assert stuck.received == [b":\n\n"] and stuck.ended and reg.dropped == 1
    reg.heartbeat(b":\n\n")  # the dropped one is gone: not written to again, not dropped twice
    assert stuck.received == [b":\n\n"] and reg.dropped == 1 and not ok.ended
    assert reg.emptied == []


def test_the_last_stream_of_a_key_leaving_empties_it() -> None:
    reg = ByName()
    a, b = Conn(), Conn()
    reg._add(("prod", "x"), a.sink)
    reg._add(("prod", "x"), b.sink)
    reg._remove(("prod", "x"), a.sink)
    assert reg.emptied == []
    reg._remove(("prod", "x"), b.sink)
    assert reg.emptied == [("prod", "x")] and not a.ended and not b.ended
    reg._remove(("prod", "x"), b.sink)  # again (a stream's own detach after a drop): still empty
    assert reg.emptied == [("prod", "x"), ("prod", "x")]
    reg.heartbeat(b"-")
    assert a.received == b.received == []


def test_close_all_ends_one_environment_or_everything() -> None:
    reg = ByName()
    prod, prod2, dev = Conn(), Conn(), Conn("dev")
    reg._add(("prod", "x"), prod.sink)
    reg._add(("prod", "z"), prod2.sink)
    reg._add(("dev", "x"), dev.sink)
    reg.close_all("prod")
    assert prod.ended and prod2.ended and not dev.ended and reg.dropped == 0
    assert sorted(reg.emptied) == [("prod", "x"), ("prod", "z")]
    reg.heartbeat(b"-")
    assert prod.received == [] and dev.received == [b"-"]
    reg.close_all()
    assert dev.ended and reg.emptied[-1] == ("dev", "x")


def test_the_hub_and_the_client_streams_share_it() -> None:
    hub = Hub()
    stuck, fine = Conn(accepts=0), Conn()
    hub.attach(stuck.sink)
    hub.attach(fine.sink)
    hub.heartbeat(b":\n\n")
    assert stuck.ended and hub.dropped == 1 and hub.count("prod", "all") == 1 and fine.received == [b":\n\n"]

    rs = Ruleset("prod")
    flag = {"key": "f", "version": 1, "on": True, "variations": [False, True], "offVariation": 0,
            "fallthrough": {"variation": 1}, "clientSide": True}  # fmt: skip
    rs.replace({"f": parse_flag(flag)}, {}, 1)
    streams = ClientStreams()
    group = streams.group(rs, parse_context({"kind": "user", "key": "u"}), for_browsers, False)
    browser = Conn(accepts=0)
    streams.attach(group, browser.sink)
    assert streams.count("prod") == (1, 1)
    streams.heartbeat(b":\n\n")
    assert browser.ended and streams.dropped == 1
    assert streams.count("prod") == (0, 0)  # its last stream dropped: the group is forgotten
    assert hub.dropped == 1  # each fan-out counts its own


def test_a_client_group_outlives_one_of_its_streams() -> None:
    rs = Ruleset("prod")
    rs.replace({}, {}, 1)
    streams = ClientStreams()
    ctx = parse_context({"kind": "user", "key": "u"})
    first, second = Conn(), Conn()
    group = streams.group(rs, ctx, for_browsers, False)
    streams.attach(group, first.sink)
    assert streams.group(rs, ctx, for_browsers, False) is group  # the same context joins it
    streams.attach(group, second.sink)
    streams.detach(group, first.sink)
    assert streams.count("prod") == (1, 1)
    streams.close_all("prod")
    assert second.ended and not first.ended and streams.count() == (0, 0)
    assert streams.group(rs, ctx, for_browsers, False) is not group  # a new group, evaluated afresh
