"""The propagation tool's "commit seen" clock: a Redis subscriber as quick to wake as can be.

It runs in a process of its own, asks the kernel for real-time scheduling where allowed, blocks in
`recv` on a plain socket and takes the time before parsing anything. Latencies are measured from
this moment, so it must not be later than the relay node's own subscriber seeing the same message:
with redis-py on a thread (the first version) it was, by a fraction of a millisecond, once the SSE
client had become fast enough to show it — a negative median in the smoke test.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from relay.store.watch import watch_channel
from relay.wire import codec

OnMessage = Callable[[bytes, float], None]


def prioritize() -> None:
    """Real-time priority for this process if the kernel lets us; a lower nice value otherwise."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))  # type: ignore[attr-defined]
        return
    except (AttributeError, OSError):
        pass
    with contextlib.suppress(OSError):
        os.nice(-10)


def _command(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for p in parts:
        b = p.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _parse(buf: bytes, pos: int) -> tuple[Any, int] | None:
    """One RESP value at `pos`: (value, next position), or None if incomplete."""
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return None
    kind, line = buf[pos : pos + 1], buf[pos + 1 : eol]
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, eol + 2
        end = eol + 2 + size
        return (buf[eol + 2 : end], end + 2) if len(buf) >= end + 2 else None
    if kind == b"*":
        items, at = [], eol + 2
        for _ in range(int(line)):
            parsed = _parse(buf, at)
            if parsed is None:
                return None
            item, at = parsed
            items.append(item)
        return items, at
    if kind == b"-":
        return ConnectionError(f"Redis refused the commit watcher: {line.decode()}"), eol + 2
    return line, eol + 2  # +simple, :integer


def raw_socket_for(url: str, timeout: float = 5.0) -> tuple[socket.socket, str | None, str | None] | None:
    """A connected socket for redis:// and unix:// URLs (others: None, the caller falls back)."""
    parts = urlsplit(url)
    password = unquote(parts.password) if parts.password else None
    username = unquote(parts.username) if parts.username else None
    if parts.scheme == "redis":
        sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    elif parts.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(parts.path)
    else:
        return None
    return sock, username, password


def watch(url: str, channel: str, on_message: OnMessage, stopped: Callable[[], bool], password: str | None) -> bool:
    """Call `on_message(payload, monotonic time at recv)` for each message on `channel` until
    `stopped()`; False (having done nothing) if the URL needs the redis-py client instead."""
    opened = raw_socket_for(url)
    if opened is None:
        return False
    sock, username, url_password = opened
    password = password or url_password
    with sock:
        if password:
            sock.sendall(_command("AUTH", *([username] if username else []), password))
        sock.sendall(_command("SUBSCRIBE", channel))
        sock.settimeout(0.5)
        buf = b""
        while not stopped():
            try:
                data = sock.recv(1 << 20)
            except TimeoutError:
                continue
            now = time.monotonic()
            if not data:
                raise ConnectionError("Redis closed the commit watcher's connection")
            buf += data
            pos = 0
            while (parsed := _parse(buf, pos)) is not None:
                value, pos = parsed
                if isinstance(value, Exception):
                    raise value
                if isinstance(value, list) and len(value) == 3 and value[0] == b"message":
                    on_message(value[2], now)
            buf = buf[pos:]
    return True


def _watch(url: str, channel: str, flag: str, out: Any, stop: Any) -> None:
    """In a process of its own: note when each change of `flag` arrives from Redis."""
    prioritize()

    def on_message(data: bytes, now: float) -> None:
        body = codec.loads(data)
        if body.get("key") == flag:
            out.put((int(body["item"]["version"]), now))

    try:
        if not watch(url, channel, on_message, stop.is_set, None):  # rediss://, sentinel: redis-py
            stop_watching = watch_channel(url, channel, on_message)
            stop.wait()
            stop_watching()
    finally:
        out.put(None)


class CommitWatcher:
    """The commit times, taken in a separate process: the tool's own event loop, busy reading
    thousands of sockets, could otherwise delay them (CLOCK_MONOTONIC is shared by processes)."""

    def __init__(self, url: str, channel: str, flag: str) -> None:
        ctx = multiprocessing.get_context("fork")
        self._out, self._stop = ctx.Queue(), ctx.Event()
        self._process = ctx.Process(target=_watch, args=(url, channel, flag, self._out, self._stop), daemon=True)
        self._process.start()
        time.sleep(0.5)  # subscribed before the first flip

    def stop(self) -> dict[int, float]:
        """Stop watching; the commit time of each version seen, by version."""
        self._stop.set()
        commits: dict[int, float] = {}
        while (item := self._out.get(timeout=10)) is not None:
            commits[item[0]] = item[1]
        self._process.join(5)
        return commits
