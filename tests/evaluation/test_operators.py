"""Each clause operator, checked against a fixed expectation and against LaunchDarkly's SDK."""

from __future__ import annotations

from typing import Any

import pytest

from tests.oracle import both

CASES: list[tuple[str, Any, list[Any], bool]] = [
    # in: JSON equality; numbers compare numerically, booleans never equal numbers
    ("in", "a", ["b", "a"], True),
    ("in", "a", ["A"], False),
    ("in", 1, [1.0], True),
    ("in", True, [1], False),
    ("in", 1, [True], False),
    ("in", False, [False], True),
    ("in", {"x": 1}, [{"x": 1}], True),
    ("in", ["x", "y"], ["y"], True),  # array attribute: any element
    ("in", [], ["y"], False),
    ("in", "99", [99], False),
    # string operators need strings on both sides
    ("startsWith", "checkout-v2", ["check"], True),
    ("startsWith", "checkout", ["out"], False),
    ("startsWith", True, ["true"], False),
    ("endsWith", "ann@example.com", ["@example.com", "@x.org"], True),
    ("endsWith", "ann@example.com", ["@EXAMPLE.com"], False),
    ("contains", "pineapple", ["apple"], True),
    ("contains", "pineapple", [1], False),
    ("contains", "pineapple", ["kiwi", "pine"], True),  # any value; the second here
    ("contains", "pineapple", ["kiwi", 7, "pear"], False),
    # matches: unanchored search; a bad pattern never matches
    ("matches", "hello world", ["wor"], True),
    ("matches", "hello", ["^h.*o$"], True),
    ("matches", "hello", ["(unclosed"], False),
    ("matches", 5, ["5"], False),
    ("matches", "hello", ["^x", "(bad", "l+o$"], True),  # any pattern; the bad one skipped
    ("matches", "hello", ["^x", "z"], False),
    # numeric: both numbers, booleans excluded
    ("lessThan", 1, [2], True),
    ("lessThan", 2, [2], False),
    ("lessThanOrEqual", 2, [2.0], True),
    ("greaterThan", 3, [2, 10], True),
    ("greaterThanOrEqual", 2, [2], True),
    ("lessThan", "1", [2], False),
    ("lessThan", True, [2], False),
    # dates: epoch ms or RFC 3339 with a zone; equal times match neither
    ("before", "2017-12-06T07:00:00Z", ["2017-12-06T08:00:00Z"], True),
    ("before", 1512543600000, [1512543600001], True),
    ("after", "2017-12-06T07:00:00.5-07:00", ["2017-12-06T07:00:00-07:00"], True),
    ("after", "2017-12-06T07:00:00Z", [1512543600000], False),
    ("before", "2017-12-06T07:00:00Z", [1512543600000], False),
    ("before", "2017-12-06", ["2020-01-01T00:00:00Z"], False),
    ("before", "1512543600000", [1612543600000], False),
    ("after", True, [0], False),
    # semantic versions: missing parts filled with 0, build metadata ignored
    ("semVerEqual", "2.0.0", ["2"], True),
    ("semVerEqual", "2.0.0+build", ["2.0.0"], True),
    ("semVerLessThan", "2.0.0-rc.2", ["2.0.0-rc.10"], True),
    ("semVerLessThan", "2.0.0-rc", ["2.0.0"], True),
    ("semVerGreaterThan", "2.1", ["2.0.9"], True),
    ("semVerGreaterThan", "v2.1.0", ["2.0.0"], False),
    ("semVerEqual", "02.0.0", ["2.0.0"], False),
    ("semVerEqual", 2, ["2.0.0"], False),
    # unknown operators never match
    ("equalz", "a", ["a"], False),
]


def _flag(op: str, values: list[Any], negate: bool = False) -> dict[str, Any]:
    clause = {"attribute": "attr", "op": op, "values": values, "negate": negate}
    return {
        "on": True,
        "variations": ["no", "yes"],
        "fallthrough": {"variation": 0},
        "rules": [{"id": "r", "variation": 1, "clauses": [clause]}],
    }


@pytest.mark.parametrize(("op", "value", "values", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_operator(op: str, value: Any, values: list[Any], expected: bool) -> None:
    result = both({"f": _flag(op, values)}, {}, "f", {"kind": "user", "key": "k", "attr": value})
    assert (result[0] == "yes") is expected


@pytest.mark.parametrize(("op", "value", "values", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_negated_operator(op: str, value: Any, values: list[Any], expected: bool) -> None:
    result = both({"f": _flag(op, values, negate=True)}, {}, "f", {"kind": "user", "key": "k", "attr": value})
    assert (result[0] == "yes") is not expected


@pytest.mark.parametrize("op", ["in", "lessThan", "equalz"])
def test_missing_attribute_never_matches_even_negated(op: str) -> None:
    result = both({"f": _flag(op, [1], negate=True)}, {}, "f", {"kind": "user", "key": "k"})
    assert result[0] == "no"
