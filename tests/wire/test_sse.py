"""SSE framing: every event and keep-alive relay writes is these bytes."""

from __future__ import annotations

from relay.evaluation import parse_flag, parse_segment
from relay.wire import codec, sse
from relay.wire.changes import Change
from relay.wire.payloads import change_events


def test_an_event_is_its_name_one_data_line_and_a_blank_line() -> None:
    assert sse.event("put", b'{"path":"/","data":{}}') == b'event: put\ndata: {"path":"/","data":{}}\n\n'
    assert sse.event("ping", b" ") == b"event: ping\ndata:  \n\n"


def test_a_comment_and_the_heartbeat() -> None:
    assert sse.HEARTBEAT == sse.comment() == b":\n\n"
    assert sse.comment("keep-alive") == b":keep-alive\n\n"
    assert sse.comment("two\nlines") == b":two\n:lines\n\n"  # each line a comment, or the second is a field


def test_a_change_is_framed_by_the_one_framer() -> None:
    flag = parse_flag({"key": "a.b", "version": 4, "on": True, "variations": [1], "fallthrough": {"variation": 0}})
    all_event, flags_event = change_events(Change("prod", 9, "flag", "a.b", flag))
    data = codec.dumps(flag.data)
    assert all_event == b'event: patch\ndata: {"path":"/flags/a.b","data":' + data + b"}\n\n"
    assert flags_event == b'event: patch\ndata: {"path":"/a.b","data":' + data + b"}\n\n"
    gone = parse_segment({"key": "g", "version": 5, "deleted": True})
    assert change_events(Change("prod", 10, "segment", "g", gone)) == (
        b'event: delete\ndata: {"path":"/segments/g","version":5}\n\n',
        None,
    )
