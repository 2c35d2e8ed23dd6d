"""A small SSE reader for tests: events from an httpx stream, with a time budget."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


class EventStream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines: AsyncIterator[str] = response.aiter_lines()

    async def next(self, timeout: float = 5.0) -> tuple[str, Any]:
        """The next event (name, parsed data); comments (heartbeats) are skipped."""
        async with asyncio.timeout(timeout):
            name, data = "message", []
            async for line in self._lines:
                if line == "":
                    if data:
                        text = "\n".join(data)
                        try:
                            return name, json.loads(text)
                        except ValueError:
                            return name, text
                    name, data = "message", []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
            raise EOFError("stream closed")
