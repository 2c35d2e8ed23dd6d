"""Encoded payloads for server-side SDKs: a `put`'s data, the polling body, and a change as the
`patch`/`delete` event of each stream kind (relay.fanout.put_cache keeps them per data version)."""

from __future__ import annotations

from relay.wire import codec, sse
from relay.wire.changes import Change


def item_json(item_data: dict[str, object]) -> bytes:
    return codec.dumps(item_data)


def items_map(items: dict[str, object]) -> bytes:
    parts = [codec.dumps(key) + b":" + item_json(item.data) for key, item in items.items() if not item.deleted]  # type: ignore[attr-defined]
    return b"{" + b",".join(parts) + b"}"


def change_events(change: Change) -> tuple[bytes, bytes | None]:
    """The change as an `/all` event and, for flags, as a legacy `/flags` event."""
    item = change.item
    key = codec.dumps(change.key)[1:-1].decode()  # JSON-escaped, without the quotes
    prefix = "flags" if change.kind == "flag" else "segments"
    if item.deleted:
        version = str(item.version).encode()
        all_event = sse.event("delete", b'{"path":"/' + f"{prefix}/{key}".encode() + b'","version":' + version + b"}")
        flags_event = sse.event("delete", b'{"path":"/' + key.encode() + b'","version":' + version + b"}")
    else:
        body = item_json(item.data)
        all_event = sse.event("patch", b'{"path":"/' + f"{prefix}/{key}".encode() + b'","data":' + body + b"}")
        flags_event = sse.event("patch", b'{"path":"/' + key.encode() + b'","data":' + body + b"}")
    return all_event, flags_event if change.kind == "flag" else None
