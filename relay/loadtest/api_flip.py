"""The propagation tool's flips through the admin API: `PATCH /api/v1/environments/{env}/flags/{key}`
with the merge patch `{"on": …}`, as an operator's script or `curl` would send it.

One keep-alive HTTP/1.1 connection on the tool's own event loop (asyncio streams, no HTTP library:
httpx is a development dependency only, and urllib on a thread would add a thread hop to the
request-sent clock). The connection is opened before the first flip so its set-up is not counted.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["ApiFlipError", "ApiFlipper"]


class ApiFlipError(Exception):
    """The admin API refused a flip, or could not be reached (the message says which)."""


class ApiFlipper:
    """Flips one flag through the admin API over one connection; `toggle` returns the new version."""

    def __init__(self, api_url: str, token: str, env: str, key: str, timeout: float = 30.0) -> None:
        parts = urlsplit(api_url.rstrip("/"))
        if parts.scheme != "http" or not parts.hostname:
            raise ApiFlipError(f"--api-url must be http://HOST:PORT (the admin listener), not {api_url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = f"{parts.path}/api/v1/environments/{quote(env, safe='')}/flags/{quote(key, safe='')}"
        self.timeout = timeout
        self._token = token  # sent, never printed
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError) as e:
            raise ApiFlipError(f"admin API unreachable at http://{self.host}:{self.port}: {e}") from None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def toggle(self, on: bool, comment: str = "loadtest flip") -> int:
        """Send the PATCH and read the answer: the flag's new version (ApiFlipError on anything but 200)."""
        if self._writer is None:
            await self.open()
        assert self._reader is not None and self._writer is not None
        body = json.dumps({"on": on}).encode()
        head = (
            f"PATCH {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self._token}\r\nContent-Type: application/merge-patch+json\r\n"
            f"X-Relay-Comment: {comment}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        try:
            status, answer = await asyncio.wait_for(self._answer(), self.timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
            await self.close()
            raise ApiFlipError(f"admin API at http://{self.host}:{self.port} did not answer the flip: {e!r}") from None
        if status != 200:
            message = answer.get("message", answer) if isinstance(answer, dict) else answer
            raise ApiFlipError(f"the admin API answered the flip with HTTP {status}: {message}")
        return int(answer["item"]["version"])

    async def _answer(self) -> tuple[int, Any]:
        assert self._reader is not None
        status_line = await self._reader.readline()
        status = int(status_line.split()[1])
        length, close = 0, False
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                close = True
        raw = await self._reader.readexactly(length)
        if close:
            await self.close()
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, raw.decode(errors="replace")[:200]
