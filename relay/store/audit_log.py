"""An environment's audit log read page by page with filters, its entries as the API shows them, and revert.

Entries are the write script's (relay.store.storage): who (`actor`, and since tokens `via` — "api" with the
token's id, or "direct-redis" with the OS user —), what (`action`, `kind`, `key`, `before`, `after`), when
(`time`, epoch ms) and the data version. Entries older than `via` were all written on Redis directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relay.errors import ConflictError, NotFoundError, ValidationError
from relay.store.writes import WritePath, WriteResult
from relay.wire import codec

_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_CHUNK = 500  # entries read per round trip while filtering
SCAN_CAP = 10_000  # entries one page looks through at most: past it, the page ends early, with a cursor


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which entries: all filters must hold. `kind` and `key` together: one flag's or segment's changes."""

    kind: str | None = None
    key: str | None = None
    actor: str | None = None
    since_ms: int | None = None  # at or after
    until_ms: int | None = None  # at or before
    limit: int = 100
    cursor: str | None = None  # the `next` of the page before: entries older than it

    def matches(self, entry: dict[str, str]) -> bool:
        return (
            (self.kind is None or entry.get("kind") == self.kind)
            and (self.key is None or entry.get("key") == self.key)
            and (self.actor is None or entry.get("actor") == self.actor)
        )


def check_cursor(cursor: str) -> str:
    if not _ID.fullmatch(cursor):
        raise ValidationError("cursor", f'expected the "next" of an earlier page, got "{cursor}"')
    return cursor


def _decode(fields: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in fields.items()}


async def read_page(admin: WritePath, env: str, query: AuditQuery) -> tuple[list[dict[str, str]], str | None]:
    """Up to `query.limit` entries, newest first, and the cursor of the next page (None: no more).
    A deleted environment's log stays readable (who deleted it, and what it held)."""
    if not await admin.storage.audit_exists(env):
        await admin.environment(env)
    client, stream = admin.storage.client, admin.storage.key(env, "audit")
    top = "+" if query.until_ms is None else f"{query.until_ms}-18446744073709551615"  # the last id of that ms
    if query.cursor:
        top = f"({check_cursor(query.cursor)}"  # exclusive: older than the page before's last
    bottom = f"{query.since_ms}-0" if query.since_ms is not None else "-"
    out: list[dict[str, str]] = []
    scanned, last = 0, None
    while len(out) < query.limit and scanned < SCAN_CAP:
        want = min(_CHUNK, SCAN_CAP - scanned)
        chunk = await client.xrevrange(stream, max=top, min=bottom, count=want)
        for raw_id, fields in chunk:
            last, scanned = raw_id.decode(), scanned + 1
            if query.matches(found := {"id": last, **_decode(fields)}):
                out.append(found)
                if len(out) == query.limit:
                    break
        else:
            if len(chunk) < want:  # the stream has no more
                return out, None
        top = f"({last}"
    return out, last if await _older(client, stream, last, bottom) else None


async def _older(client: Any, stream: str, last: str | None, bottom: str) -> bool:
    return last is not None and bool(await client.xrevrange(stream, max=f"({last}", min=bottom, count=1))


async def entry(admin: WritePath, env: str, entry_id: str) -> dict[str, str]:
    if not await admin.storage.audit_exists(env):
        await admin.environment(env)
    missing = NotFoundError(f'no audit entry "{entry_id}" in environment "{env}"')
    if not _ID.fullmatch(entry_id):  # before Redis, which refuses a malformed id with an error
        raise missing
    found = await admin.storage.client.xrange(admin.storage.key(env, "audit"), min=entry_id, max=entry_id, count=1)
    if not found:
        raise missing
    return {"id": entry_id, **_decode(found[0][1])}


def _json(text: str | None) -> Any:
    return codec.loads(text, what="audit entry") if text else None


def view(e: dict[str, str]) -> dict[str, Any]:
    """An entry as the API answers it (and `relay audit --json` prints it)."""
    return {
        "id": e["id"], "time": int(e.get("time") or 0), "actor": e.get("actor", ""),
        "via": e.get("via") or "direct-redis", "token": e.get("token") or None, "osUser": e.get("os_user") or None,
        "action": e.get("action", ""), "kind": e.get("kind", ""), "key": e.get("key", ""),
        "version": int(e["version"]) if e.get("version") else None, "comment": e.get("comment", ""),
        "before": _json(e.get("before")), "after": _json(e.get("after")),
    }  # fmt: skip


def who(e: dict[str, str]) -> str:
    """How `relay audit` marks the way an entry's actor was established."""
    if e.get("via") == "api":
        return f"[API, token {e.get('token', '?')}]"
    user = e.get("os_user")
    return f"[direct Redis, OS user {user}]" if user and user != e.get("actor") else "[direct Redis]"


async def revert(
    admin: WritePath, env: str, entry_id: str, *, comment: str = "", check: Callable[[str, str], None] | None = None
) -> WriteResult:
    """Write an entry's "before" back as a new, audited change (a delete for a creation), only if its item is
    still at that entry's "after" version (ConflictError otherwise). `check(kind, key)` may refuse it first."""
    e = await entry(admin, env, entry_id)
    kind, key = e.get("kind", ""), e.get("key", "")
    if kind not in ("flag", "segment"):
        raise ValidationError("entry", f'only flag and segment changes can be reverted, not "{e.get("action")}"')
    if check is not None:
        check(kind, key)
    before, after = _json(e.get("before")), _json(e.get("after"))
    version = int(after["version"])
    current = await admin.storage.items(env, kind, [key])
    now = int(codec.loads(raw).get("version", 0)) if (raw := current[key]) else 0
    if now != version:
        raise ConflictError(
            f'{kind} "{key}" is at version {now}, no longer at this entry\'s {version}: revert the later changes first'
        )
    comment = comment or f"revert of audit entry {entry_id}"
    if before is None or before.get("deleted"):
        return await admin.delete_item(env, kind, key, expected_version=version, comment=comment)
    data = {k: v for k, v in before.items() if k != "version"}
    return await admin.put_item(env, kind, data, key=key, expected_version=version, comment=comment)
