"""What a client with no more than a public client-side ID (or none at all) can hold on a node, against
a real relay process: a slow request body is refused at its deadline, and client streams' distinct
contexts stay within their byte budget."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.store.writes import WritePath
from tests.integration.helpers import demo_environment, eventually, read_open, read_responses, run_async, storage_for
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess
from tests.integration.sse import EventStream

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
        received, closed = read_open(s, 1.5)  # a stream outlives the body deadline
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


def _context(name: str, size: int = 3000) -> dict[str, str]:
    """A user context whose serialized form is a little over `size` bytes."""
    return {"kind": "user", "key": name, "bio": name * (size // len(name))}


def _status(relay: RelayProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{relay.url}/status", timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def test_client_streams_hold_distinct_contexts_within_their_byte_budget(
    redis_server: RedisServer, start: Start
) -> None:
    relay, secrets = start(client_stream_context_bytes="10000")  # room for three contexts of ~3 KB
    url = f"{relay.url}/eval/{secrets['client_side_id']}"

    async def open_stream(client: httpx.AsyncClient, ctx: dict[str, str]) -> tuple[httpx.Response, EventStream | None]:
        request = client.build_request("REPORT", url, json=ctx)
        response = await client.send(request, stream=True)
        if response.status_code != 200:
            await response.aread()
            return response, None
        stream = EventStream(response)
        assert (await stream.next())[0] == "put"
        return response, stream

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=None) as client:
            opened = [await open_stream(client, _context(name)) for name in ("ann", "bob", "cyd")]
            assert all(stream is not None for _, stream in opened)
            used = _status(relay)["client_stream_contexts"]
            assert 9000 < used["bytes"] <= 10000 and used["max_bytes"] == 10000
            refused, _ = await open_stream(client, _context("dee"))  # a fourth distinct context
            assert refused.status_code == 503 and refused.json()["code"] == "too_many_contexts"
            assert 5 <= int(refused.headers["retry-after"]) <= 10
            same, shared = await open_stream(client, _context("ann"))  # one the node holds: no more bytes
            assert same.status_code == 200 and shared is not None
            assert _status(relay)["client_stream_contexts"]["bytes"] == used["bytes"]

            # The streams held are untouched: a change reaches each of them.
            admin = WritePath(storage_for(redis_server.url), actor="test")
            await admin.toggle("prod", "checkout-kill-switch", False)
            for _, stream in [*opened, (same, shared)]:
                assert stream is not None
                name, data = await stream.next()
                assert name == "patch" and data["key"] == "checkout-kill-switch" and data["value"] is False

            await opened[1][0].aclose()  # bob leaves: his bytes are freed
            await eventually(lambda: _status(relay)["client_stream_contexts"]["bytes"] < used["bytes"], what="freed")
            again, stream = await open_stream(client, _context("dee"))
            assert again.status_code == 200 and stream is not None
            assert _status(relay)["client_stream_contexts"]["refused"] == 1
            for response, _ in [*opened, (same, shared), (again, stream)]:
                await response.aclose()
        await eventually(lambda: _status(relay)["client_stream_contexts"]["bytes"] == 0, what="all freed")

    run_async(scenario())
