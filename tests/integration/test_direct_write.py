"""Fast-path responses written to uvicorn's transport in one piece (relay.server.uvicorn.direct_write) are the
very bytes uvicorn's own `send` writes.

Two real uvicorn servers (relay's protocol, uvloop) run relay's app in threads of this process,
on the same Redis: one with direct writing on, one with it off (`create_app(direct_write=False)`).
Each exchange is made over a raw socket with each, and the bytes received compared (the `date`
header aside, which may tick between the two).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from relay.app import bounded_protocol, create_app
from relay.config import Settings
from relay.server.fastpath import FastPath
from relay.server.uvicorn import direct_write as direct
from relay.wire.clientside import encode_context
from tests.integration.helpers import demo_environment, read_responses
from tests.integration.redis_server import RedisServer, free_port

STUDENT = encode_context({"kind": "user", "key": "zed", "userType": "student"})


@dataclass
class Node:
    port: int  # direct writing on
    port_off: int  # direct writing off
    keys: dict[str, str]
    writer: direct.ResponseWriter  # the first one's


@contextmanager
def _serve(settings: Settings, redis_url: str, direct_write: bool) -> Iterator[tuple[int, FastPath]]:
    app = create_app(settings, redis_url=redis_url, direct_write=direct_write)
    assert isinstance(app, FastPath)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=bounded_protocol(settings),  # type: ignore[arg-type]
        log_level="warning",
        access_log=settings.access_log,  # as `relay serve` runs it (uvicorn logs in `send` otherwise)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield port, app
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    redis = RedisServer(tmp_path_factory.mktemp("direct") / "redis").start()
    try:
        keys = demo_environment(redis.url)
        settings = Settings()
        with _serve(settings, redis.url, True) as (port, app), _serve(settings, redis.url, False) as (off, app_off):
            assert app.writer is not None and app_off.writer is None
            yield Node(port, off, keys, app.writer)
    finally:
        redis.stop()


def _exchange(port: int, request: bytes, responses: int) -> bytes:
    """Send `request` (one or more pipelined requests) and read `responses` whole responses, or
    until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        return read_responses(s, responses)


def _both_ways(node: Node, request: bytes, responses: int = 1) -> tuple[bytes, bytes, int]:
    """The bytes received with direct writing on and off, and how many responses it wrote."""
    written = 0
    real = node.writer.write

    def counting(*args: Any) -> bool:
        nonlocal written
        done = real(*args)
        written += done
        return done

    # As under `relay serve`, uvicorn's access logger has no handlers (pytest gives it capturing
    # ones, and uvicorn writes through `send` where access logging is on).
    logging.getLogger("uvicorn.access").handlers = []
    node.writer.write = counting  # type: ignore[method-assign]
    try:
        on = _exchange(node.port, request, responses)
        off = _exchange(node.port_off, request, responses)
    finally:
        del node.writer.write  # the method again

    def undated(raw: bytes) -> bytes:
        return re.sub(rb"(?im)^date: [^\r\n]*", b"date: -", raw)

    return undated(on), undated(off), written


def _get(path: str, *headers: str, version: str = "1.1") -> bytes:
    return "\r\n".join([f"GET {path} HTTP/{version}", "Host: relay", *headers, "", ""]).encode()


@pytest.mark.parametrize(
    "headers",
    [
        (),
        ("Origin: https://app.example",),
        ("Origin: https://other.example", "Accept: application/json"),
        ("Origin: https://app.example", "Connection: close"),  # not kept alive: `connection: close`, closed
    ],
)
def test_browser_evalx_bytes_are_uvicorns(node: Node, headers: tuple[str, ...]) -> None:
    keys = node.keys
    path = f"/sdk/evalx/{keys['client_side_id']}/contexts/{STUDENT}"
    on, off, written = _both_ways(node, _get(path, *headers))
    assert on == off
    assert on.startswith(b"HTTP/1.1 200 OK\r\n") and b'"value":' in on
    assert written == 1
    assert (b"connection: close\r\n" in on) == ("Connection: close" in headers)


def test_mobile_evalx_and_http_1_0_bytes_are_uvicorns(node: Node) -> None:
    keys = node.keys
    request = _get(f"/msdk/evalx/contexts/{STUDENT}", f"Authorization: {keys['mobile_key']}", version="1.0")
    on, off, written = _both_ways(node, request)
    assert on == off and on.startswith(b"HTTP/1.1 200 OK\r\n") and written == 1


def test_pipelined_requests_are_answered_in_order(node: Node) -> None:
    keys = node.keys
    first = _get(f"/sdk/evalx/{keys['client_side_id']}/contexts/{STUDENT}", "Origin: https://a.example")
    second = _get(f"/sdk/evalx/{keys['client_side_id']}/contexts/{encode_context({'key': 'other'})}")
    on, off, written = _both_ways(node, first + second + _get("/healthz", "Connection: close"), responses=3)
    assert on == off and on.count(b"HTTP/1.1 200 OK\r\n") == 3 and written == 2


def test_a_header_uvicorn_refuses_goes_through_send(node: Node) -> None:
    # A control character in the Origin, which the CORS headers echo: uvicorn's `send` refuses the
    # header (a 500, logged), and direct writing leaves it to `send`.
    keys = node.keys
    request = _get(f"/sdk/evalx/{keys['client_side_id']}/contexts/{STUDENT}", "Origin: https://a\x01.example")
    on, off, written = _both_ways(node, request)
    assert on == off and written == 0
    assert direct.render([(b"access-control-allow-origin", b"https://a\x01.example")]) is None
    assert direct.render([(b"Connection", b"close")]) is None
    assert direct.render([(b"X-A", b"b")]) == b"x-a: b\r\n"
