"""Evaluation contexts: single-kind, multi-kind and LaunchDarkly's older user format.

Validation follows LaunchDarkly's Python SDK 9.18.4 (`Context.from_dict`) for the new formats and
LaunchDarkly's Go parser for the old user format, which the Python SDK cannot read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from relay.errors import InvalidContextError, ValidationError
from relay.evaluation.reader import MAX_DEPTH, check_depth, json_type

DEFAULT_KIND = "user"
_BAD_KIND_CHARS = re.compile(r"[^-a-zA-Z0-9._]")
_OLD_USER_STRINGS = ("firstName", "lastName", "email", "country", "avatar", "ip")
_OLD_USER_DROPPED_CUSTOM = frozenset(("kind", "key", "name", "anonymous", "_meta"))
_SPECIAL = frozenset(("_meta", "", "key", "kind", "name", "anonymous"))  # every other name is an attribute


# Contexts are made per request and never changed: not frozen, because a frozen dataclass's
# __init__ sets each field through object.__setattr__, 3x the cost (0.7 against 0.24 us here).
@dataclass(slots=True)
class SingleContext:
    kind: str
    key: str
    # Every attribute a clause can read: custom ones plus key, kind, anonymous, and name when set.
    attrs: dict[str, Any]
    private: tuple[str, ...] = ()

    @property
    def name(self) -> str | None:
        return self.attrs.get("name")  # type: ignore[no-any-return]

    @property
    def anonymous(self) -> bool:
        return bool(self.attrs["anonymous"])


@dataclass(slots=True)
class Context:
    singles: tuple[SingleContext, ...]  # sorted by kind
    by_kind: dict[str, SingleContext] = field(repr=False)
    fully_qualified_key: str

    @property
    def multiple(self) -> bool:
        return len(self.singles) > 1

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(s.kind for s in self.singles)

    def get(self, kind: str) -> SingleContext | None:
        return self.by_kind.get(kind)


def kind_error(kind: str) -> str | None:
    """Why `kind` is not a valid context kind, or None."""
    if kind == "":
        return "context kind must not be empty"
    if kind == "kind":
        return '"kind" is not a valid context kind'
    if kind == "multi":
        return 'kind "multi" is only valid at the top level of a multi-kind context'
    if _BAD_KIND_CHARS.search(kind):
        return f'context kind "{kind}" contains characters other than letters, digits, ".", "_" and "-"'
    return None


def _escape_key(key: str) -> str:
    return key.replace("%", "%25").replace(":", "%3A")


def _fail(path: str, reason: str) -> InvalidContextError:
    return InvalidContextError(path, reason)


def _single(props: dict[str, Any], kind: str, path: str) -> SingleContext:
    key: Any = ""
    name: Any = None
    anonymous = False
    attrs: dict[str, Any] = {}
    private: list[str] = []
    for prop, value in props.items():
        if prop not in _SPECIAL:  # the commonest case first, one set lookup
            if value is None:
                attrs.pop(prop, None)
            else:
                attrs[prop] = value
            continue
        where = f"{path}.{prop}" if path else prop
        if prop == "_meta":
            if value is None:
                continue
            if not isinstance(value, dict):
                raise _fail(where, f"expected an object, got {json_type(value)}")
            names = value.get("privateAttributes")
            if names is not None:
                if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                    raise _fail(f"{where}.privateAttributes", "expected an array of strings")
                private.extend(names)
        elif prop == "":
            raise _fail(path or "context", "attribute names must not be empty")
        elif prop == "key":
            if not isinstance(value, str):
                raise _fail(where, f"expected a string, got {json_type(value)}")
            key = value
        elif prop == "kind":
            if not isinstance(value, str):
                raise _fail(where, f"expected a string, got {json_type(value)}")
            kind = value
        elif prop == "name":
            if value is not None and not isinstance(value, str):
                raise _fail(where, f"expected a string or null, got {json_type(value)}")
            name = value
        elif prop == "anonymous":
            if not isinstance(value, bool):
                raise _fail(where, f"expected a boolean, got {json_type(value)}")
            anonymous = value
    err = kind_error(kind)
    if err:
        raise _fail(f"{path}.kind" if path else "kind", err)
    if key == "":
        raise _fail(f"{path}.key" if path else "key", "context key must not be missing or empty")
    return _make_single(kind, key, name, anonymous, attrs, private)


def _make_single(
    kind: str, key: str, name: str | None, anonymous: bool, attrs: dict[str, Any], private: list[str]
) -> SingleContext:
    attrs["key"] = key
    attrs["kind"] = kind
    attrs["anonymous"] = anonymous
    if name is not None:
        attrs["name"] = name
    return SingleContext(kind, key, attrs, tuple(private))


def _old_user(props: dict[str, Any]) -> SingleContext:
    key = props.get("key")
    if not isinstance(key, str):
        raise _fail("key", "a user's key is required and must be a string")
    attrs: dict[str, Any] = {}
    name = props.get("name")
    if name is not None and not isinstance(name, str):
        raise _fail("name", f"expected a string or null, got {json_type(name)}")
    anonymous = props.get("anonymous")
    if anonymous is not None and not isinstance(anonymous, bool):
        raise _fail("anonymous", f"expected a boolean or null, got {json_type(anonymous)}")
    custom = props.get("custom")
    if custom is not None:
        if not isinstance(custom, dict):
            raise _fail("custom", f"expected an object, got {json_type(custom)}")
        for prop, value in custom.items():
            if prop not in _OLD_USER_DROPPED_CUSTOM and prop != "" and value is not None:
                attrs[prop] = value
    for prop in _OLD_USER_STRINGS:
        value = props.get(prop)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _fail(prop, f"expected a string, got {json_type(value)}")
        attrs[prop] = value
    private = props.get("privateAttributeNames")
    if private is not None and (not isinstance(private, list) or not all(isinstance(n, str) for n in private)):
        raise _fail("privateAttributeNames", "expected an array of strings")
    return _make_single(DEFAULT_KIND, key, name, bool(anonymous), attrs, list(private or ()))


def _build(singles: list[SingleContext]) -> Context:
    if len(singles) == 1:  # the commonest case, without the sort and the duplicate check
        s = singles[0]
        fqk = s.key if s.kind == DEFAULT_KIND else f"{s.kind}:{_escape_key(s.key)}"
        return Context((s,), {s.kind: s}, fqk)
    singles.sort(key=lambda s: s.kind)
    by_kind: dict[str, SingleContext] = {}
    for s in singles:
        if s.kind in by_kind:
            raise _fail("kind", f'kind "{s.kind}" appears more than once in a multi-kind context')
        by_kind[s.kind] = s
    fqk = ":".join(f"{s.kind}:{_escape_key(s.key)}" for s in singles)
    return Context(tuple(singles), by_kind, fqk)


def shallow_json(raw: bytes) -> bool:
    """Whether JSON text `raw` certainly nests no deeper than MAX_DEPTH: every array or object
    opens with a literal bracket, so their count bounds the depth (the walk costs more)."""
    return raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH


def parse_context(data: Any, shallow: bool = False) -> Context:
    """Parse a context in any of LaunchDarkly's JSON formats, or raise InvalidContextError.
    `shallow`: the caller knows `data` cannot nest past MAX_DEPTH (see `shallow_json`)."""
    if not isinstance(data, dict):
        raise _fail("context", f"expected an object, got {json_type(data)}")
    if not shallow:
        try:
            check_depth(data, "")
        except ValidationError as e:
            raise _fail(e.path, e.reason) from None
    kind = data.get("kind")
    if kind is None and "kind" not in data:
        return _build([_old_user(data)])
    if not isinstance(kind, str):
        raise _fail("kind", f"expected a string, got {json_type(kind)}")
    if kind != "multi":
        return _build([_single(data, kind, "")])
    singles: list[SingleContext] = []
    for prop, body in data.items():
        if prop == "kind":
            continue
        if not isinstance(body, dict):
            raise _fail(prop, f"expected an object, got {json_type(body)}")
        singles.append(_single(body, prop, prop))
    if not singles:
        raise _fail("context", "a multi-kind context must contain at least one kind")
    return _build(singles)
