"""One environment's in-memory, compiled ruleset, changed only by version-ordered changes."""

from __future__ import annotations

import time
from enum import Enum

from relay.evaluation import Flag, Segment, Snapshot, parse_flag, parse_segment
from relay.evaluation.evaluator import FUSE_AFTER
from relay.wire.changes import Change, Item


class Applied(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # at or below the current data version: already have it
    GAP = "gap"  # a version was skipped: the caller must resync in full


class Ruleset:
    """Flags and segments of one environment, tombstones included, at one data version."""

    def __init__(self, env: str, fuse_after: int = FUSE_AFTER) -> None:
        self.env = env
        self.fuse_after = fuse_after
        self.version = 0
        self.flags: dict[str, Flag] = {}
        self.segments: dict[str, Segment] = {}
        self.snapshot = Snapshot(self.flags, self.segments, fuse_after)
        self.ready = False  # true after the first full load
        self.stale_since: float | None = None  # set while Redis is unreachable
        self.epoch: str | None = None  # Redis's epoch of this data (`relay env accept` starts a new one)
        self.diverged: str | None = None  # why Redis's data is not taken (it lost data), or None
        self.loaded_at: float | None = None

    def _items(self, kind: str) -> dict[str, Flag] | dict[str, Segment]:
        return self.flags if kind == "flag" else self.segments

    def check(self, version: int) -> Applied:
        if version <= self.version:
            return Applied.DUPLICATE
        if version > self.version + 1:
            return Applied.GAP
        return Applied.APPLIED

    def apply(self, change: Change) -> Applied:
        """Apply the next change in data-version order."""
        verdict = self.check(change.version)
        if verdict is Applied.APPLIED:
            self._items(change.kind)[change.key] = change.item  # type: ignore[assignment]
            self.snapshot.changed()
            self.version = change.version
        return verdict

    def replace(self, flags: dict[str, Flag], segments: dict[str, Segment], version: int) -> list[Change]:
        """Take a full load; returns what changed, so streams can send patches rather than reload."""
        changes: list[Change] = []
        for kind, old, new in (("flag", self.flags, flags), ("segment", self.segments, segments)):
            for key, item in new.items():
                before = old.get(key)
                if before is None or before.version != item.version or before.deleted != item.deleted:
                    changes.append(Change(self.env, version, kind, key, item))
            for key, before in old.items():
                if key not in new and not before.deleted:  # vanished from Redis: delete it downstream
                    tomb = _tombstone(kind, key, before.version + 1)
                    new[key] = tomb  # type: ignore[assignment]
                    changes.append(Change(self.env, version, kind, key, tomb))
        self.flags = flags
        self.segments = segments
        self.snapshot = Snapshot(flags, segments, self.fuse_after)
        self.version = version
        self.ready = True
        self.loaded_at = time.time()
        return changes


def _tombstone(kind: str, key: str, version: int) -> Item:
    data = {"key": key, "version": version, "deleted": True}
    return parse_flag(data, strict=False) if kind == "flag" else parse_segment(data, strict=False)
