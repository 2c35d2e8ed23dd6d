"""How much of an environment's audit log Redis still holds, and the whole of it read for archiving.

The audit stream (P:E:audit, relay.store.storage) is capped at `audit_max_entries`: every XADD
trims the oldest entries (approximately: whole radix-tree nodes, so the stream keeps at least the
cap). Trimming is silent, and an empty answer for "what changed this flag" looked the same as
"never changed"; `trim(storage, env)` says where the kept history begins and whether anything
older was dropped, for `relay audit` and the admin API to say so.

Whether entries were dropped is exact on Redis 7+ (XINFO STREAM's `entries-added` counts every
entry ever added, relay never deletes one otherwise). Redis 6.2 (the embedded redis-server) does
not count them; there the stream is trimmed when its oldest entry is not the environment's creation
(`env-create`, the first entry of every environment relay made) and it holds at least the cap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from relay.store.storage import Storage


@dataclass(frozen=True, slots=True)
class AuditTrim:
    """Where an environment's kept audit history begins."""

    cap: int  # audit_max_entries of this reader's settings
    entries: int  # entries kept
    first_ms: int | None  # the time of the oldest entry kept (None: no entry)
    trimmed: bool  # entries older than that one were dropped for the cap
    exact: bool  # known from Redis's count of entries added (Redis 7+), else inferred

    def hides(self, since_ms: int | None = None) -> bool:
        """Whether trimmed entries fall in a read of the history after `since_ms` (None: all of it)."""
        return self.trimmed and self.first_ms is not None and (since_ms is None or since_ms < self.first_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cap": self.cap,
            "entries": self.entries,
            "first": self.first_ms,
            "trimmed": self.trimmed,
            "exact": self.exact,
        }


def _ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


async def trim(storage: Storage, env: str) -> AuditTrim:
    """Where `env`'s kept audit history begins, and whether older entries were trimmed."""
    try:
        info = await storage.client.xinfo_stream(storage.key(env, "audit"))
    except ResponseError:  # no such stream: nothing written, nothing trimmed
        return AuditTrim(storage.audit_max, 0, None, False, True)
    length = int(info["length"])
    first = info.get("first-entry")
    first_ms = _ms(first[0]) if first else None
    added = info.get("entries-added")
    if added is not None:
        return AuditTrim(storage.audit_max, length, first_ms, int(added) > length, True)
    fields = first[1] if first else {}
    created_first = fields.get(b"action") == b"env-create" and fields.get(b"key") == env.encode()
    trimmed = first is not None and not created_first and length >= storage.audit_max
    return AuditTrim(storage.audit_max, length, first_ms, trimmed, False)


async def entries(storage: Storage, env: str, chunk: int = 1000) -> AsyncIterator[list[dict[str, str]]]:
    """Every audit entry of `env`, oldest first, `chunk` at a time (for an archive: nothing is held
    in memory but one chunk). Entries added while it reads are included; trimmed ones are gone."""
    stream, low = storage.key(env, "audit"), "-"
    while True:
        page = await storage.client.xrange(stream, min=low, max="+", count=chunk)
        if not page:
            return
        yield [{"id": i.decode(), **{k.decode(): v.decode() for k, v in f.items()}} for i, f in page]
        if len(page) < chunk:
            return
        low = f"({page[-1][0].decode()}"


async def length(storage: Storage, env: str) -> int:
    """How many audit entries `env` has now (for a progress bar)."""
    return int(await storage.client.xlen(storage.key(env, "audit")))
