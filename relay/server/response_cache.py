"""Recent evaluated (`evalx`) response bodies, so a repeated browser context costs a dict lookup."""

from __future__ import annotations

from collections import OrderedDict


class ResponseCache:
    """Recent `evalx` bodies by (environment, data version, audience, reasons, context): a browser's
    context repeats across page loads, and the data version in the key retires entries on change."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._bodies: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: tuple[object, ...]) -> bytes | None:
        body = self._bodies.get(key)
        if body is None:
            self.misses += 1
            return None
        self.hits += 1
        self._bodies.move_to_end(key)
        return body

    def clear(self) -> None:
        self._bodies.clear()

    def put(self, key: tuple[object, ...], body: bytes) -> None:
        if self.max_entries <= 0:
            return
        self._bodies[key] = body
        if len(self._bodies) > self.max_entries:
            self._bodies.popitem(last=False)
