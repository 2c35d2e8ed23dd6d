"""Encoded payloads for server-side SDKs: every byte built once per data version, or once per change.

A `put` (and the polling body) for an environment is serialized once per data version and reused
by every connection that arrives at that version; a change becomes one `patch`/`delete` event per
stream kind, written to every connection as is.
"""

from __future__ import annotations

from relay import codec
from relay.ruleset import Change, Ruleset


def sse(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


HEARTBEAT = b":\n\n"


def item_json(item_data: dict[str, object]) -> bytes:
    return codec.dumps(item_data)


class ServerPayloads:
    """Per environment, the latest data version's encodings."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[int, bytes]] = {}

    def _memo(self, rs: Ruleset, name: str, build: object) -> bytes:
        hit = self._cache.get((rs.env, name))
        if hit is not None and hit[0] == rs.version:
            return hit[1]
        data: bytes = build()  # type: ignore[operator]
        self._cache[(rs.env, name)] = (rs.version, data)
        return data

    def forget(self, env: str) -> None:
        for key in [k for k in self._cache if k[0] == env]:
            del self._cache[key]

    def flags_map(self, rs: Ruleset) -> bytes:
        return self._memo(rs, "flags", lambda: _map(rs.flags))

    def all_data(self, rs: Ruleset) -> bytes:
        """`{"flags": {...}, "segments": {...}}`: the polling body, and the data of a `put`."""
        return self._memo(
            rs, "all", lambda: b'{"flags":' + self.flags_map(rs) + b',"segments":' + _map(rs.segments) + b"}"
        )

    def put_all(self, rs: Ruleset) -> bytes:
        return self._memo(rs, "put-all", lambda: sse("put", b'{"path":"/","data":' + self.all_data(rs) + b"}"))

    def put_flags(self, rs: Ruleset) -> bytes:
        return self._memo(rs, "put-flags", lambda: sse("put", b'{"path":"/","data":' + self.flags_map(rs) + b"}"))


def _map(items: dict[str, object]) -> bytes:
    parts = [codec.dumps(key) + b":" + item_json(item.data) for key, item in items.items() if not item.deleted]  # type: ignore[attr-defined]
    return b"{" + b",".join(parts) + b"}"


def change_events(change: Change) -> tuple[bytes, bytes | None]:
    """The change as an `/all` event and, for flags, as a legacy `/flags` event."""
    item = change.item
    key = codec.dumps(change.key)[1:-1].decode()  # JSON-escaped, without the quotes
    prefix = "flags" if change.kind == "flag" else "segments"
    if item.deleted:
        version = str(item.version).encode()
        all_event = sse("delete", b'{"path":"/' + f"{prefix}/{key}".encode() + b'","version":' + version + b"}")
        flags_event = sse("delete", b'{"path":"/' + key.encode() + b'","version":' + version + b"}")
    else:
        body = item_json(item.data)
        all_event = sse("patch", b'{"path":"/' + f"{prefix}/{key}".encode() + b'","data":' + body + b"}")
        flags_event = sse("patch", b'{"path":"/' + key.encode() + b'","data":' + body + b"}")
    return all_event, flags_event if change.kind == "flag" else None
