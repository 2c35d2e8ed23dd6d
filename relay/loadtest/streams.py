"""The propagation tool's streams, opened and checked before anything is flipped.

Every stream must connect and receive its first event (the `put` snapshot) before the first flip:
a flip nobody can see measures nothing, yet it is a real, audited change to a real flag (a wrong
port once produced twelve of them and a report of `nan`). So the tool opens everything first and,
if streams failed, says why with counts — "0 of 100 streams connected: connection refused (100)" —
and stops with Redis untouched.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol

from relay.loadtest.sse_client import HTTPStatusError, NoResponseError, NotAStreamError, SSEConnection

Drain = Callable[[list[SSEConnection]], None]  # parses what the given streams have received so far

# What to check first, by failure: the message ends with the likeliest cause.
_HINTS = {
    "connection refused": "is a relay node listening at --target?",
    "401 unauthorized": "is --sdk-key the SDK key of --env?",
    "403 forbidden": "is --sdk-key the SDK key of --env?",
    "404 not found": "is --target the node's base URL, and does it serve --env?",
    "name not resolved": "is --target's host name right?",
}


class Bar(Protocol):
    """A progress bar: tqdm's, or one that shows nothing."""

    def update(self, n: int) -> None: ...

    def set_postfix_str(self, s: str, refresh: bool = True) -> None: ...

    def close(self) -> None: ...


class StreamsNotReady(Exception):
    """Streams failed to connect or to receive their first event; nothing was flipped."""

    def __init__(self, total: int, failures: dict[SSEConnection, str], mixed: bool) -> None:
        self.total = total
        self.connected = total - len(failures)
        self.reasons = Counter(failures.values())
        self.failures = failures
        super().__init__(summary(total, failures, mixed))


@dataclass
class Opened:
    """The result of `open_all`: the streams that work, and why the others do not."""

    live: list[SSEConnection]
    failures: dict[SSEConnection, str] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def reason(error: BaseException, timeout: float) -> str:
    """A short, countable name for why a stream could not be opened ("401 unauthorized")."""
    if isinstance(error, HTTPStatusError):
        try:
            return f"{error.status} {HTTPStatus(error.status).phrase.lower()}"
        except ValueError:
            return f"HTTP {error.status}"
    if isinstance(error, NoResponseError):
        return f"no response within {timeout:g} s"
    if isinstance(error, NotAStreamError):
        return f"not an event stream ({error.content_type or 'no Content-Type'})"
    if isinstance(error, TimeoutError):
        return f"timed out connecting ({timeout:g} s)"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, socket.gaierror):
        return "name not resolved"
    if isinstance(error, ssl.SSLError):
        return f"TLS error ({error.reason or error})"
    if isinstance(error, ConnectionError) and "before the response headers" in str(error):
        return "closed before the response headers"
    return f"{type(error).__name__}: {error}"


def summary(total: int, failures: dict[SSEConnection, str], mixed: bool) -> str:
    """What failed, with counts, most frequent first: "95 of 100 streams connected: 401 unauthorized (5)"."""
    by_reason: dict[str, Counter[str]] = {}
    for conn, why in failures.items():
        by_reason.setdefault(why, Counter())[conn.label] += 1
    parts = []
    for why, kinds in sorted(by_reason.items(), key=lambda item: -item[1].total()):
        count = str(kinds.total())
        if mixed:  # which half failed says which credential is wrong
            count = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        parts.append(f"{why} ({count})")
    text = f"{total - len(failures)} of {total} streams connected: " + ", ".join(parts)
    top = max(by_reason, key=lambda why: by_reason[why].total(), default="")
    return text + (f" — {_HINTS[top]}" if top in _HINTS else "")


async def open_all(
    conns: list[SSEConnection],
    ready: set[SSEConnection],
    timeout: float,
    concurrency: int,
    bar: Bar,
    drain: Drain,
) -> Opened:
    """Open every stream and wait (up to `timeout`) until each has had its first event, which
    the caller's event handler records by adding the connection to `ready`."""
    gate = asyncio.Semaphore(concurrency)
    opened = Opened(live=[])
    failed = 0

    async def open_one(conn: SSEConnection) -> None:
        nonlocal failed
        async with gate:
            try:
                await conn.open(timeout)
                opened.tasks.append(asyncio.create_task(conn.run()))
            except (OSError, ConnectionError, TimeoutError) as e:
                conn.error = f"{type(e).__name__}: {e}"
                opened.failures[conn] = reason(e, timeout)
                failed += 1
                bar.set_postfix_str(f"{failed} failed", refresh=False)
            bar.update(1)

    await asyncio.gather(*(open_one(c) for c in conns))
    bar.close()
    connected = [c for c in conns if c not in opened.failures]
    deadline = time.monotonic() + timeout
    # Until each has had its first event or has closed: a closed one will not get it any more.
    while time.monotonic() < deadline and any(c not in ready and c.error is None for c in connected):
        await asyncio.sleep(0.05)
        drain(connected)
    drain(connected)
    for conn in connected:
        if conn in ready and conn.error is None:
            opened.live.append(conn)
        elif conn.error is not None:
            opened.failures[conn] = "closed before the first event"
        else:
            opened.failures[conn] = f"no first event within {timeout:g} s"
    return opened
