"""What a server-side stream or poll gets on connect, built once per data version.

A `put` (and the polling body) for an environment is serialized once per data version and reused
by every connection that arrives at that version; a change becomes one `patch`/`delete` event per
stream kind (relay.wire.payloads.change_events), written to every connection as is.
"""

from __future__ import annotations

from relay.store.ruleset import Ruleset
from relay.wire import sse
from relay.wire.payloads import items_map


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
        return self._memo(rs, "flags", lambda: items_map(rs.flags))

    def all_data(self, rs: Ruleset) -> bytes:
        """`{"flags": {...}, "segments": {...}}`: the polling body, and the data of a `put`."""
        return self._memo(
            rs, "all", lambda: b'{"flags":' + self.flags_map(rs) + b',"segments":' + items_map(rs.segments) + b"}"
        )

    def put_all(self, rs: Ruleset) -> bytes:
        return self._memo(rs, "put-all", lambda: sse.event("put", b'{"path":"/","data":' + self.all_data(rs) + b"}"))

    def put_flags(self, rs: Ruleset) -> bytes:
        return self._memo(rs, "put-flags", lambda: sse.event("put", b'{"path":"/","data":' + self.flags_map(rs) + b"}"))
