"""Where SDKs' analytics events go: the environment's capped Redis stream.

The server's one write to Redis, handed to it as this narrow sink (it never sees Storage).
"""

from __future__ import annotations

from relay.store.storage import Storage


class EventSink:
    """Appends batches of SDK events, keeping at most `max_entries` per environment (approximately)."""

    def __init__(self, storage: Storage, max_entries: int) -> None:
        self._storage = storage
        self.max_entries = max_entries

    async def append(self, env: str, *, kind: str, source: str, payload_id: str, body: bytes, now_ms: int) -> bool:
        """Store one batch; False if a batch with this payload ID was already stored (an SDK's retry)."""
        return await self._storage.append_events(
            env,
            kind=kind,
            source=source,
            payload_id=payload_id,
            body=body,
            now_ms=now_ms,
            max_entries=self.max_entries,
        )
