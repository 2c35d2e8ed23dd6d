"""What a write did, or would do: the per-item plan every write returns (pure: no I/O).

The write path builds a plan from what it read and what it is about to store; a dry run returns
the plan without writing. The CLI prints it; the admin API will return `to_dict()` as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relay.evaluation import DataWarning
from relay.wire import codec

ACTIONS = ("created", "updated", "deleted", "unchanged")
# Fields the write path sets itself: a write that differs from the stored item only in these is no change.
SET_BY_WRITER = frozenset({"version"})


@dataclass(frozen=True, slots=True)
class ItemChange:
    """One item of a write. `before` is what Redis held (None: nothing, or a tombstone for a
    "created" item), `after` what the write stores (a tombstone for "deleted")."""

    kind: str  # "flag" or "segment"
    key: str
    action: str  # one of ACTIONS
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "action": self.action, "before": self.before, "after": self.after}


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A write's outcome. `items` and `data_versions` are what was stored (empty for a dry run
    and for a write that changed nothing); `changes` is the plan, one entry per item touched;
    `warnings` what the items hold that LaunchDarkly's SDKs evaluate but a writer should hear of
    (docs/compatibility.md: written all the same, unless the write was strict)."""

    items: list[dict[str, Any]]  # what was stored, canonical JSON
    data_versions: list[int]
    changes: list[ItemChange] = field(default_factory=list)
    dry_run: bool = False
    # What the write had to do besides writing, for people (freeing stored events on a full Redis).
    notes: list[str] = field(default_factory=list)
    warnings: list[DataWarning] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def deletions(self) -> list[ItemChange]:
        return [c for c in self.changes if c.action == "deleted"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "items": self.items,
            "data_versions": self.data_versions,
            **{action: self.count(action) for action in ACTIONS},
            "changes": [c.to_dict() for c in self.changes],
            "notes": self.notes,
            "warnings": [w.to_dict() for w in self.warnings],
        }


# Asked before a write deletes what the caller did not name one by one (an import's --replace, an
# environment): True goes ahead. The CLI asks on a terminal or takes --yes; the API its own form.
Confirm = Callable[[Any], bool]


def confirmed(_: Any) -> bool:
    """A `Confirm` for callers that have their consent already."""
    return True


@dataclass(frozen=True, slots=True)
class EnvironmentPlan:
    """An environment-level operation (accept, delete), planned or done.

    `flags` and `segments` count the live items, `data_version` is Redis's; `lost_data` says why
    Redis shows that it lost this environment's data (empty: it shows no sign of it)."""

    env: str
    action: str  # "accept" or "delete"
    dry_run: bool
    flags: int
    segments: int
    data_version: int
    lost_data: str = ""
    keys: tuple[str, ...] = ()  # the Redis keys a delete removes

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "action": self.action,
            "dry_run": self.dry_run,
            "flags": self.flags,
            "segments": self.segments,
            "data_version": self.data_version,
            "lost_data": self.lost_data or None,
            "keys": list(self.keys),
        }


def comparable(item: dict[str, Any]) -> bytes:
    """An item's content as bytes, without the fields the write path sets. Compared as JSON, not as
    Python values: `1 == True == 1.0` in Python, but a variation of `1` is not one of `true`."""
    return codec.dumps({k: v for k, v in item.items() if k not in SET_BY_WRITER}, sort_keys=True)


def same_content(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return comparable(before) == comparable(after)


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


def diff(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, old, new) for every leaf that differs (MISSING where absent); `version` changes are
    left out as noise."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            if path == "" and key == "version":
                continue
            sub = f"{path}.{key}" if path else str(key)
            out += diff(before.get(key, MISSING), after.get(key, MISSING), sub)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            out += diff(b, a, f"{path}[{i}]")
        return out
    if type(before) is not type(after):  # 1 and true are different JSON, though equal in Python
        return [(path or "(item)", before, after)]
    return [] if before == after else [(path or "(item)", before, after)]
