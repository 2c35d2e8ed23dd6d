"""What a client with no more than a public client-side ID (or none at all) can hold on a node, against
a real relay process: a slow request body is refused at its deadline, and client streams' distinct
contexts stay within their byte budget."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import demo_environment, read_responses
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess

Start = Callable[..., tuple[RelayProcess, dict[str, str]]]


@pytest.fixture
def start(redis_server: RedisServer, tmp_path: Path) -> Iterator[Start]:
    """`start(**settings)`: the demo environment and a relay node with those settings (stopped at the end)."""
    started: list[RelayProcess] = []

    def go(**settings: str) -> tuple[RelayProcess, dict[str, str]]:
        secrets = demo_environment(redis_server.url)
        started.append(RelayProcess(redis_server.url, tmp_path / "relay", **settings).start())
        return started[-1], secrets

    yield go
    for relay in started:
        relay.stop()


def _slow_body(port: int, head: str) -> tuple[bytes, float, float]:
    """A complete head declaring a 100,000-byte body, then one byte of it and nothing more: the answer,
    when it came and when the connection was closed (seconds after the byte)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode() + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
        started = time.monotonic()
        answer = read_responses(s)
        answered = time.monotonic() - started
        while s.recv(65536):  # the connection is half-closed, then closed
            pass
        return answer, answered, time.monotonic() - started


def test_a_slow_body_to_the_events_report_and_ofrep_routes_is_refused_at_its_deadline(start: Start) -> None:
    relay, secrets = start(body_timeout="0.5", head_timeout="5")
    sdk, client_id = secrets["sdk_key"], secrets["client_side_id"]
    heads = {
        "events": f"POST /bulk HTTP/1.1\r\nHost: x\r\nAuthorization: {sdk}\r\n",
        "browser events": f"POST /events/bulk/{client_id} HTTP/1.1\r\nHost: x\r\n",
        "REPORT": f"REPORT /sdk/evalx/{client_id}/context HTTP/1.1\r\nHost: x\r\n",
        "REPORT stream": f"REPORT /eval/{client_id} HTTP/1.1\r\nHost: x\r\n",
        "OFREP": f"POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sdk}\r\n",
    }
    for route, head in heads.items():
        answer, answered, closed = _slow_body(relay.port, head)
        assert answer.startswith(b"HTTP/1.1 408"), (route, answer[:200])
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body == {"code": "request_timeout", "message": "no complete request body within 0.5 s"}, route
        assert 0.4 < answered < 2.0, (route, answered)
        assert closed < 4.5, (route, closed)  # half-closed at the deadline, closed after a short linger
    log = relay.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log


def test_the_body_deadline_leaves_whole_bodies_and_streams_alone(start: Start) -> None:
    relay, secrets = start(body_timeout="0.5", head_timeout="5")
    context = b'{"kind": "user", "key": "ann"}'
    report = (
        f"REPORT /eval/{secrets['client_side_id']} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(context)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as s:
        s.sendall(report[:-10])  # the head in two reads, then the body in two, all within the deadline
        time.sleep(0.2)
        s.sendall(report[-10:] + context[:5])
        time.sleep(0.2)
        s.sendall(context[5:])
        s.settimeout(0.2)
        received, closed, until = b"", False, time.monotonic() + 1.5  # a stream outlives the body deadline
        while time.monotonic() < until and not closed:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            closed = not chunk
            received += chunk
        assert received.startswith(b"HTTP/1.1 200") and b"event: put" in received
        assert not closed and b"408" not in received

    events = b'[{"kind": "identify", "creationDate": 1, "context": {"kind": "user", "key": "ann"}}]'
    post = (
        f"POST /bulk HTTP/1.1\r\nHost: x\r\nAuthorization: {secrets['sdk_key']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(events)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as s:
        for _ in range(3):  # kept alive: each body within its own deadline, 1.2 s in all
            s.sendall(post + events[:10])
            time.sleep(0.4)
            s.sendall(events[10:])
            assert read_responses(s).startswith(b"HTTP/1.1 202")
