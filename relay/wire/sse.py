"""Server-sent events (`text/event-stream`): the one framer of every SSE byte relay writes."""

from __future__ import annotations


def event(name: str, data: bytes) -> bytes:
    """One event: its name, one `data:` line, and the blank line that ends it.

    `data` must hold no newline (relay's is compact JSON, which has none): SSE would read each line
    as a separate `data:` field. Not checked here: this runs for every event of every change."""
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


def comment(text: str = "") -> bytes:
    """A comment, which clients ignore: a keep-alive that keeps proxies from closing an idle stream."""
    return b"".join(b":" + line.encode() + b"\n" for line in text.split("\n")) + b"\n"


HEARTBEAT = comment()  # b":\n\n", written to every stream when idle
