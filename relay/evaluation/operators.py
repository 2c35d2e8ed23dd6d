"""Clause operators, compiled once per clause into a test of one context value.

`compile_operator(op, values)` returns `test(value) -> bool` for a single (non-array) context
value, or None for an unknown operator. Clause values are parsed here, never per request:
string sets for `in`, tuples for prefix/suffix tests, compiled regexes, the extreme number,
parsed times and versions. Semantics are LaunchDarkly's Python SDK 9.18.4's
(ldclient/impl/operators.py), including its choice of parsers for times and versions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import pyrfc3339
from semver import Version as VersionInfo

Test = Callable[[Any], bool]

_EPOCH = datetime.fromtimestamp(0, UTC)
_VERSION_HEAD = re.compile(r"^([0-9.]*)(.*)")


_NUMBER_TYPES = frozenset((int, float))


def is_number(value: Any) -> bool:
    return type(value) in _NUMBER_TYPES  # JSON numbers; bool is not a number here


@lru_cache(maxsize=4096)
def _parse_time_str(text: str) -> float | None:
    try:
        return (pyrfc3339.parse(text) - _EPOCH).total_seconds() * 1000.0
    except Exception:  # naive timestamps fail the subtraction; the SDK treats both as "not a time"
        return None


def to_float(value: int | float) -> float:
    """float(), with integers beyond the float range (possible only from Python callers: JSON
    parsing stops at 64 bits) as infinities rather than OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def parse_time(value: Any) -> float | None:
    """Epoch milliseconds for a number or an RFC 3339 string, else None."""
    if is_number(value):
        return to_float(value)
    if isinstance(value, str):
        return _parse_time_str(value)
    return None


@lru_cache(maxsize=4096)
def _parse_semver_str(text: str) -> VersionInfo | None:
    # Missing minor and patch parts are filled with zeros: "2" -> 2.0.0, "2.1-rc" -> 2.1.0-rc.
    for _ in range(3):
        try:
            return VersionInfo.parse(text)
        except ValueError:
            m = _VERSION_HEAD.search(text)
            text = text + ".0" if m is None else m.group(1) + ".0" + m.group(2)
        except TypeError:
            return None
    return None


def parse_semver(value: Any) -> VersionInfo | None:
    return _parse_semver_str(value) if isinstance(value, str) else None


SemverKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def _prerelease_part(identifier: str) -> tuple[int, int, str]:
    if not identifier.isdigit():
        return (1, 0, identifier)
    if not identifier.isascii():
        identifier = str(int(identifier))
    normalized = identifier.lstrip("0") or "0"
    return (0, len(normalized), normalized)


@lru_cache(maxsize=4096)
def semver_key(value: str) -> SemverKey | None:
    """A sort key that orders versions exactly as `semver.Version.compare` does (build ignored;
    a release ranks above its pre-releases), so comparing is one tuple comparison."""
    v = _parse_semver_str(value)
    if v is None:
        return None
    if not v.prerelease:
        return (v.major, v.minor, v.patch, 1, ())
    return (v.major, v.minor, v.patch, 0, tuple(_prerelease_part(p) for p in v.prerelease.split(".")))


def compile_regex(value: Any) -> re.Pattern[str] | None:
    if not isinstance(value, str):
        return None
    try:
        return re.compile(value)
    except Exception:  # an uncompilable pattern never matches
        return None


def _never(_: Any) -> bool:
    return False


def string_set(op: str, values: list[Any]) -> frozenset[str] | None:
    """For `in` over string values only: the set a string attribute is looked up in."""
    if op != "in" or not values or not all(type(v) is str for v in values):
        return None
    return frozenset(values)


def _op_in(values: list[Any]) -> Test:
    strings: set[str] = set()
    numbers: set[int | float] = set()
    bools: set[bool] = set()
    others: list[Any] = []  # arrays and objects compare by deep equality
    has_null = False
    for c in values:
        if isinstance(c, bool):
            bools.add(c)
        elif isinstance(c, str):
            strings.add(c)
        elif isinstance(c, int | float):
            numbers.add(c)
        elif c is None:
            has_null = True
        else:
            others.append(c)

    def test(u: Any) -> bool:
        t = type(u)
        if t is str:
            return u in strings
        if t is bool:  # never equal to a number, though Python says True == 1
            return u in bools
        if t is int or t is float:
            return u in numbers
        if u is None:
            return has_null
        return u in others

    return test


def _string_op(values: list[Any], kind: str) -> Test:
    strings = tuple(c for c in values if isinstance(c, str))
    if not strings:
        return _never
    if kind == "startsWith":
        return lambda u: type(u) is str and u.startswith(strings)
    if kind == "endsWith":
        return lambda u: type(u) is str and u.endswith(strings)
    if len(strings) == 1:  # (a generator per test cost more than the test)
        only = strings[0]
        return lambda u: type(u) is str and only in u

    def contains(u: Any) -> bool:
        if type(u) is str:
            for c in strings:
                if c in u:
                    return True
        return False

    return contains


def _matches(values: list[Any]) -> Test:
    searches = tuple(p.search for p in map(compile_regex, values) if p is not None)
    if not searches:
        return _never
    if len(searches) == 1:
        search = searches[0]
        return lambda u: type(u) is str and search(u) is not None

    def matches(u: Any) -> bool:
        if type(u) is str:
            for found in searches:
                if found(u) is not None:
                    return True
        return False

    return matches


def _numeric(values: list[Any], op: str) -> Test:
    numbers = [to_float(c) for c in values if is_number(c)]
    if not numbers:
        return _never
    # "any clause value satisfies it" reduces to one comparison with the extreme value.
    hi, lo = max(numbers), min(numbers)
    if op == "lessThan":
        return lambda u: is_number(u) and to_float(u) < hi
    if op == "lessThanOrEqual":
        return lambda u: is_number(u) and to_float(u) <= hi
    if op == "greaterThan":
        return lambda u: is_number(u) and to_float(u) > lo
    return lambda u: is_number(u) and to_float(u) >= lo


def _time(values: list[Any], op: str) -> Test:
    times = [t for t in map(parse_time, values) if t is not None]
    if not times:
        return _never
    hi, lo = max(times), min(times)

    def before(u: Any) -> bool:
        t = parse_time(u)
        return t is not None and t < hi

    def after(u: Any) -> bool:
        t = parse_time(u)
        return t is not None and t > lo

    return before if op == "before" else after


def _semver(values: list[Any], op: str) -> Test:
    keys = [k for k in (semver_key(c) for c in values if isinstance(c, str)) if k is not None]
    if not keys:
        return _never
    hi, lo, exact = max(keys), min(keys), frozenset(keys)

    def equal(u: Any) -> bool:
        return type(u) is str and semver_key(u) in exact

    def less(u: Any) -> bool:
        k = semver_key(u) if type(u) is str else None
        return k is not None and k < hi

    def greater(u: Any) -> bool:
        k = semver_key(u) if type(u) is str else None
        return k is not None and k > lo

    return {"semVerEqual": equal, "semVerLessThan": less, "semVerGreaterThan": greater}[op]


def _compile(op: str, values: list[Any]) -> Test | None:
    if op == "in":
        return _op_in(values)
    if op in ("startsWith", "endsWith", "contains"):
        return _string_op(values, op)
    if op == "matches":
        return _matches(values)
    if op in ("lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"):
        return _numeric(values, op)
    if op in ("before", "after"):
        return _time(values, op)
    if op in ("semVerEqual", "semVerLessThan", "semVerGreaterThan"):
        return _semver(values, op)
    return None


OPERATORS = frozenset(
    (
        "in", "startsWith", "endsWith", "contains", "matches",
        "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual",
        "before", "after", "semVerEqual", "semVerLessThan", "semVerGreaterThan",
        "segmentMatch",
    )
)  # fmt: skip


def compile_operator(op: str, values: list[Any]) -> Test | None:
    """A test of one context value against every clause value (any match), or None if unknown."""
    return _compile(op, values)


def value_problem(op: str, value: Any) -> str | None:
    """Why `value` can never match under `op` (used by strict validation), or None."""
    if op in ("startsWith", "endsWith", "contains") and not isinstance(value, str):
        return f"{op} needs string values"
    if op == "matches" and compile_regex(value) is None:
        return "not a valid regular expression"
    if op in ("lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual") and not is_number(value):
        return f"{op} needs number values"
    if op in ("before", "after") and parse_time(value) is None:
        return "not a timestamp (epoch milliseconds or RFC 3339 with a time zone)"
    if op.startswith("semVer") and parse_semver(value) is None:
        return "not a semantic version"
    if op == "segmentMatch" and not isinstance(value, str):
        return "segmentMatch needs segment keys (strings)"
    return None
