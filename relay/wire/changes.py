"""The change message: what a writer PUBLISHes on an environment's change channel, and the
`Change` every node's sync makes of it."""

from __future__ import annotations

from dataclasses import dataclass

from relay.evaluation import Flag, Segment

Item = Flag | Segment


@dataclass(frozen=True, slots=True)
class Change:
    """One item changed: its new state (a tombstone when deleted) at an environment data version."""

    env: str
    version: int
    kind: str  # "flag" or "segment"
    key: str
    item: Item
    written_ms: int | None = None  # when the writer wrote it (from the change message; None on a resync)
