"""A minimal SSE client on raw asyncio streams: cheap enough to hold thousands of connections from
one process, and it timestamps each event the moment its bytes are read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

OnEvent = Callable[["SSEConnection", str, bytes, float], None]  # (connection, event, raw data, arrival)


@dataclass(eq=False)
class SSEConnection:
    url: str
    headers: dict[str, str]
    on_event: OnEvent
    label: str = ""
    events: int = 0
    error: str | None = None
    _writer: asyncio.StreamWriter | None = field(default=None, repr=False)

    async def open(self, timeout: float = 30.0) -> None:
        """Connect and read the response headers (the first event is read by `run`)."""
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
        ssl = parts.scheme == "https"
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ssl), timeout)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        head = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Accept: text/event-stream", "Cache-Control: no-cache"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = response.split(b" ", 2)[1]
        if status != b"200":
            writer.close()
            raise ConnectionError(f"{self.url}: HTTP {status.decode()}")
        self._reader, self._writer = reader, writer
        self._chunked = b"transfer-encoding: chunked" in response.lower()

    async def run(self) -> None:
        """Read events until the server closes the stream or the task is cancelled."""
        buffer = b""
        reader = self._reader
        try:
            while True:
                if self._chunked:
                    size_line = await reader.readline()
                    if not size_line:
                        return
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        return
                    data = await reader.readexactly(size + 2)
                    chunk = data[:-2]
                else:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                now = time.monotonic()
                buffer += chunk
                while b"\n\n" in buffer:
                    raw, buffer = buffer.split(b"\n\n", 1)
                    self._dispatch(raw, now)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.close()

    def _dispatch(self, raw: bytes, now: float) -> None:
        # Kept to byte operations: with 10,000 connections in one process, parsing JSON for every
        # event would make this tool, not the server, the thing being measured.
        name, data = "message", b""
        for line in raw.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data += line[5:].lstrip()
        if not data:
            return  # a heartbeat comment
        self.events += 1
        self.on_event(self, name, data, now)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
