"""Shared pieces of the Redis-backed tests."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from relay.access.sealing import Sealer
from relay.config import Settings
from relay.store.storage import Storage, connect
from relay.store.writes import WritePath

T = TypeVar("T")
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length: (\d+)\r?$")


_OPEN: list[Storage] = []


def storage_for(url: str) -> Storage:
    storage = Storage(connect(Settings(redis_url=url), url))
    _OPEN.append(storage)
    return storage


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, closing every Redis client the scenario opened before the loop goes away."""

    async def main() -> T:
        try:
            return await coro
        finally:
            while _OPEN:
                await _OPEN.pop().close()

    return asyncio.run(main())


def simple_flag(key: str, **fields: Any) -> dict[str, Any]:
    return {
        "key": key,
        "on": True,
        "variations": [False, True],
        "offVariation": 0,
        "fallthrough": {"variation": 1},
        **fields,
    }


async def new_env(url: str, env: str = "prod", actor: str = "tester") -> tuple[WritePath, dict[str, str]]:
    admin = WritePath(storage_for(url), actor=actor)
    _, secrets = await admin.create_environment(env)
    return admin, secrets


async def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> float:
    """Seconds until `check()` held; fails the test after `timeout`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


def demo_environment(url: str, env: str = "prod", *, secret_key: str | None = None) -> dict[str, str]:
    """An environment holding the demo flags; returns its keys. With `secret_key`, in secure mode
    (its SDK key sealed with that secret, as `relay env create --secure-mode` does)."""
    from relay.cli.demo import demo_document

    async def setup() -> dict[str, str]:
        sealer = Sealer(secret_key) if secret_key else None
        admin = WritePath(storage_for(url), actor="test", sealer=sealer)
        _, secrets = await admin.create_environment(env, secure_mode=sealer is not None)
        await admin.import_items(env, demo_document())
        return secrets

    return run_async(setup())


def b64(ctx: Any) -> str:
    """A context as client SDKs put it in URLs: base64url JSON without padding."""
    from relay.wire.clientside import encode_context

    return encode_context(ctx)


def read_responses(sock: socket.socket, count: int = 1) -> bytes:
    """`count` whole HTTP/1.1 responses read from `sock` (each sized by its Content-Length), or all
    the server sent before closing the connection."""
    data, at = b"", 0
    for _ in range(count):
        while True:
            end = data.find(b"\r\n\r\n", at)
            length = None if end < 0 else _CONTENT_LENGTH.search(data, at, end)
            if length is not None and len(data) >= end + 4 + int(length.group(1)):
                at = end + 4 + int(length.group(1))
                break
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    return data


def relay_cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`relay ARGS` as its own process against `redis_url`, with a bare environment (no RELAY_* of
    the test run's), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        env={"RELAY_REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def read_open(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """What `sock` receives for `seconds`, and whether the server closed it meanwhile (a stream is
    expected to stay open past a request deadline)."""
    sock.settimeout(0.2)
    received, closed, until = b"", False, time.monotonic() + seconds
    while time.monotonic() < until and not closed:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        closed = not chunk
        received += chunk
    return received, closed
