"""Attribute references: `/a/b` paths with `~1`/`~0` escapes, or literal names.

A clause's attribute (and a rollout's `bucketBy`) is a path only when a context kind is given;
without one the whole string is a literal attribute name (LaunchDarkly's legacy rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_BAD_ESCAPE = re.compile(r"(~[^01]|~$)")


@dataclass(frozen=True, slots=True)
class AttrRef:
    raw: str
    components: tuple[str, ...]  # empty when the reference is invalid
    error: str | None = None

    @property
    def is_kind(self) -> bool:
        return self.components == ("kind",)


def _invalid(raw: str, error: str) -> AttrRef:
    return AttrRef(raw, (), error)


def from_path(raw: str) -> AttrRef:
    if raw in ("", "/"):
        return _invalid(raw, "attribute reference cannot be empty")
    if raw[0] != "/":
        return AttrRef(raw, (raw,))
    parts = raw[1:].split("/")
    out: list[str] = []
    for part in parts:
        if part == "":
            return _invalid(raw, "attribute reference contains a double or trailing slash")
        if _BAD_ESCAPE.search(part):
            return _invalid(raw, "attribute reference has a '~' not followed by 0 or 1")
        out.append(part.replace("~1", "/").replace("~0", "~"))
    return AttrRef(raw, tuple(out))


def from_literal(raw: str) -> AttrRef:
    if raw == "":
        return _invalid(raw, "attribute reference cannot be empty")
    return AttrRef(raw, (raw,))


def for_clause(attribute: str, context_kind: str | None) -> AttrRef:
    """A clause attribute: a path only when the clause names a context kind."""
    return from_path(attribute) if context_kind else from_literal(attribute)


def for_bucket_by(bucket_by: str | None, context_kind: str | None) -> AttrRef | None:
    """`bucketBy`: absent or empty means the context key (None)."""
    if not bucket_by:
        return None
    return for_clause(bucket_by, context_kind)


def lookup(attrs: dict[str, Any], components: tuple[str, ...]) -> Any:
    """The value at `components` in a context's attributes, or None when absent."""
    value = attrs.get(components[0])
    for name in components[1:]:
        if type(value) is not dict:
            return None
        value = value.get(name)
    return value
