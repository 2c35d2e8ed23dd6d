"""What LaunchDarkly's SDKs evaluate without error but relay warns about: each class of warning with
its exact JSON path, accepted with a warnings list (the write path), refused without one (strict
writes), and evaluated exactly as the SDK evaluates it. What the SDK refuses or crashes on stays
refused either way."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from relay.errors import ValidationError
from relay.evaluation import DataWarning, Snapshot, parse_context, parse_flag, parse_items, parse_segment
from relay.evaluation.builder import STRICT_REFUSAL
from tests.oracle import sdk_eval


def flag(**fields: Any) -> dict[str, Any]:
    return {
        "key": "f",
        "version": 1,
        "on": True,
        "variations": ["a", "b"],
        "offVariation": 0,
        "fallthrough": {"variation": 1},
        **fields,
    }


def rule(*clauses: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": "r0", "clauses": list(clauses), "variation": 0, **fields}


def clause(attribute: str, op: str, *values: Any, **fields: Any) -> dict[str, Any]:
    return {"attribute": attribute, "op": op, "values": list(values), **fields}


def rollout(*weights: tuple[int, int], **fields: Any) -> dict[str, Any]:
    return {"rollout": {"variations": [{"variation": v, "weight": w} for v, w in weights], **fields}}


NEVER = ": this value never matches"
MALFORMED = ": evaluates to MALFORMED_FLAG where it is reached"
FOR_KIND = "; evaluates to MALFORMED_FLAG for contexts of its kind"
NO_OP = ": it matches no value, as in LaunchDarkly's SDKs"

# (id, flag, the one warning's exact path, its exact message)
FLAG_WARNINGS: list[tuple[str, dict[str, Any], str, str]] = [
    ("number-op-string", flag(rules=[rule(clause("age", "lessThan", 10, "63"))]),
     "flags.f.rules[0].clauses[0].values[1]", 'lessThan needs number values, got the string "63"' + NEVER),
    ("number-op-bool", flag(rules=[rule(clause("age", "greaterThanOrEqual", True, 3))]),
     "flags.f.rules[0].clauses[0].values[0]", "greaterThanOrEqual needs number values, got a boolean" + NEVER),
    ("string-op-number", flag(rules=[rule(clause("email", "endsWith", 5, ".com"))]),
     "flags.f.rules[0].clauses[0].values[0]", "endsWith needs string values, got the integer 5" + NEVER),
    ("string-op-null", flag(rules=[rule(clause("email", "contains", "@", None))]),
     "flags.f.rules[0].clauses[0].values[1]", "contains needs string values, got null" + NEVER),
    ("bad-regex", flag(rules=[rule(clause("email", "matches", "(x", "^a"))]),
     "flags.f.rules[0].clauses[0].values[0]", 'not a valid regular expression, got the string "(x"' + NEVER),
    ("date-only", flag(rules=[rule(clause("created", "before", "2023-11-14", 1_700_000_000_000))]),
     "flags.f.rules[0].clauses[0].values[0]",
     'not a timestamp (epoch milliseconds or RFC 3339 with a time zone), got the string "2023-11-14"' + NEVER),
    ("semver-v", flag(rules=[rule(clause("version", "semVerLessThan", "v2.0.0", "2.0.0"))]),
     "flags.f.rules[0].clauses[0].values[0]", 'not a semantic version, got the string "v2.0.0"' + NEVER),
    ("segment-key-number", flag(rules=[rule(clause("", "segmentMatch", 5, "beta"))]),
     "flags.f.rules[0].clauses[0].values[0]", "segmentMatch needs segment keys (strings), got the integer 5" + NEVER),
    ("unknown-op", flag(rules=[rule(clause("email", "newOperator", "x"))]),
     "flags.f.rules[0].clauses[0].op", 'unknown operator "newOperator"' + NO_OP),
    ("unknown-op-negated", flag(rules=[rule(clause("email", "equalz", "x", negate=True))]),
     "flags.f.rules[0].clauses[0].op", 'unknown operator "equalz"' + NO_OP),
    ("empty-attribute", flag(rules=[rule(clause("", "in", "x"))]),
     "flags.f.rules[0].clauses[0].attribute",
     'invalid attribute reference "": attribute reference cannot be empty' + FOR_KIND),
    ("bad-path", flag(rules=[rule(clause("/a//b", "in", "x", contextKind="user"))]),
     "flags.f.rules[0].clauses[0].attribute",
     'invalid attribute reference "/a//b": attribute reference contains a double or trailing slash' + FOR_KIND),
    ("bad-bucket-by", flag(fallthrough=rollout((0, 50000), (1, 50000), contextKind="user", bucketBy="/x~")),
     "flags.f.fallthrough.rollout.bucketBy",
     "invalid attribute reference \"/x~\": attribute reference has a '~' not followed by 0 or 1" + FOR_KIND),
    ("clause-kind", flag(rules=[rule(clause("key", "in", "x", contextKind="multi"))]),
     "flags.f.rules[0].clauses[0].contextKind",
     'kind "multi" is only valid at the top level of a multi-kind context: no context has this kind'),
    ("rollout-kind", flag(fallthrough=rollout((0, 50000), (1, 50000), contextKind="kind")),
     "flags.f.fallthrough.rollout.contextKind", '"kind" is not a valid context kind: no context has this kind'),
    ("target-kind", flag(contextTargets=[{"contextKind": "o rg", "variation": 0, "values": ["x"]}]),
     "flags.f.contextTargets[0].contextKind",
     'context kind "o rg" contains characters other than letters, digits, ".", "_" and "-": no context has this kind'),
    ("off-variation", flag(offVariation=2),
     "flags.f.offVariation", "variation index 2 is out of range (the flag has 2 variations)" + MALFORMED),
    ("off-variation-negative", flag(on=False, offVariation=-1),
     "flags.f.offVariation", "variation index -1 is out of range (the flag has 2 variations)" + MALFORMED),
    ("fallthrough-variation", flag(fallthrough={"variation": 7}),
     "flags.f.fallthrough.variation", "variation index 7 is out of range (the flag has 2 variations)" + MALFORMED),
    ("rule-variation", flag(rules=[rule(clause("key", "in", "u1"), variation=2)]),
     "flags.f.rules[0].variation", "variation index 2 is out of range (the flag has 2 variations)" + MALFORMED),
    ("rollout-variation", flag(fallthrough=rollout((0, 50000), (5, 50000))),
     "flags.f.fallthrough.rollout.variations[1].variation",
     "variation index 5 is out of range (the flag has 2 variations)" + MALFORMED),
    ("target-variation", flag(targets=[{"variation": 3, "values": ["u1"]}]),
     "flags.f.targets[0].variation", "variation index 3 is out of range (the flag has 2 variations)" + MALFORMED),
    ("no-fallthrough", {k: v for k, v in flag().items() if k != "fallthrough"},
     "flags.f.fallthrough", "needs a variation or a rollout" + MALFORMED),
    ("empty-rule-outcome", flag(rules=[{"clauses": []}]),
     "flags.f.rules[0]", "needs a variation or a rollout" + MALFORMED),
    ("empty-rollout", flag(fallthrough={"rollout": {"variations": []}}),
     "flags.f.fallthrough.rollout.variations", "a rollout needs at least one weighted variation" + MALFORMED),
    ("weights-short", flag(fallthrough=rollout((0, 30000), (1, 30000))),
     "flags.f.fallthrough.rollout.variations",
     "weights add up to 60000, not 100000: contexts past the last bucket get the last one's variation"),
    ("weights-over", flag(fallthrough=rollout((0, 70000), (1, 70000))),
     "flags.f.fallthrough.rollout.variations",
     "weights add up to 140000, more than 100000: buckets past 100000 are never reached"),
    ("weight-negative", flag(fallthrough=rollout((0, -20000), (1, 60000), (0, 60000))),
     "flags.f.fallthrough.rollout.variations[0].weight",
     "weight -20000 is outside 0..100000: the bucket walk adds it as it is"),
    ("own-prerequisite", flag(prerequisites=[{"key": "f", "variation": 1}]),
     "flags.f.prerequisites[0].key", "the flag is its own prerequisite: evaluates to MALFORMED_FLAG while it is on"),
    ("user-entry-values", flag(targets=[{"variation": 0, "values": ["u1"]}],
                               contextTargets=[{"contextKind": "user", "variation": 0, "values": ["u2"]}]),
     "flags.f.contextTargets[0].values",
     'a user entry takes its keys from the first "targets" entry with its variation: '
     "LaunchDarkly's Python SDK ignores these values"),
    ("unread-targets", flag(targets=[{"variation": 0, "values": ["u1"]}],
                            contextTargets=[{"contextKind": "org", "variation": 1, "values": ["o1"]}]),
     "flags.f.targets[0].values",
     'never read: with "contextTargets", the SDKs read the user keys of "targets" only through a user entry '
     'there with variation 0, and only the first such "targets" entry'),
    ("old-target-kind", flag(targets=[{"variation": 0, "values": ["o1"], "contextKind": "org"}]),
     "flags.f.targets[0].contextKind", '"targets" hold user keys: the SDKs read these as user keys, not "org" ones'),
]  # fmt: skip

SEGMENT = {"key": "beta", "version": 1, "included": ["u3"]}
SEGMENT_WARNINGS: list[tuple[str, dict[str, Any], str, str]] = [
    ("rule-weight", {**SEGMENT, "rules": [{"clauses": [], "weight": 150000}]},
     "segments.beta.rules[0].weight", "weight 150000 is outside 0..100000: the SDKs compare it as it is"),
    ("rule-clause", {**SEGMENT, "rules": [{"clauses": [clause("age", "lessThan", "63")]}]},
     "segments.beta.rules[0].clauses[0].values[0]", 'lessThan needs number values, got the string "63"' + NEVER),
    ("included-kind", {**SEGMENT, "includedContexts": [{"contextKind": "multi", "values": ["x"]}]},
     "segments.beta.includedContexts[0].contextKind",
     'kind "multi" is only valid at the top level of a multi-kind context: no context has this kind'),
    ("rollout-kind", {**SEGMENT, "rules": [{"clauses": [], "weight": 5, "rolloutContextKind": "kind"}]},
     "segments.beta.rules[0].rolloutContextKind", '"kind" is not a valid context kind: no context has this kind'),
]  # fmt: skip

CONTEXTS: list[dict[str, Any]] = [
    {"kind": "user", "key": "u1", "age": 9, "email": "ann@example.com", "created": 1_600_000_000_000},
    {"kind": "user", "key": "u2", "age": 63, "email": "bob@test.org", "version": "1.2.3", "x": "s"},
    {"kind": "user", "key": "u3", "age": 70.5, "email": "(x", "version": "2.0.0", "created": "2023-11-14"},
    {"kind": "org", "key": "o1", "age": 1},
    {"kind": "multi", "user": {"key": "u4", "email": "carol@example.com"}, "org": {"key": "o1"}},
]


def _warnings_of(parse: Any, data: dict[str, Any], path: str) -> list[str]:
    found: list[DataWarning] = []
    parse(copy.deepcopy(data), path=path, strict=True, warnings=found)
    return [str(w) for w in found]


def _strict_error(parse: Any, data: dict[str, Any], path: str) -> ValidationError:
    with pytest.raises(ValidationError) as e:
        parse(copy.deepcopy(data), path=path, strict=True)
    return e.value


@pytest.mark.parametrize(("data", "path", "message"), [c[1:] for c in FLAG_WARNINGS], ids=[c[0] for c in FLAG_WARNINGS])
def test_each_flag_warning_has_its_exact_path(data: dict[str, Any], path: str, message: str) -> None:
    assert _warnings_of(parse_flag, data, "flags.f") == [f"{path}: {message}"]
    error = _strict_error(parse_flag, data, "flags.f")  # strict writes refuse it, at the same path
    assert (error.path, error.reason) == (path, message + STRICT_REFUSAL)


@pytest.mark.parametrize(("data", "path", "message"), [c[1:] for c in FLAG_WARNINGS], ids=[c[0] for c in FLAG_WARNINGS])
def test_what_is_accepted_with_a_warning_evaluates_as_the_sdk(data: dict[str, Any], path: str, message: str) -> None:
    parsed = parse_flag(copy.deepcopy(data), path="flags.f", strict=True, warnings=[])
    assert parsed.data["version"] == 1  # the data is kept as it is: SDKs served it see the same
    segment = parse_segment(copy.deepcopy(SEGMENT), strict=True)
    snapshot = Snapshot({"f": parsed}, {"beta": segment})
    for context in CONTEXTS:
        result = snapshot.evaluate("f", parse_context(context))
        ours = (result.value, result.variation, result.reason.to_dict())
        assert ours == sdk_eval({"f": data}, {"beta": SEGMENT}, "f", context), context


@pytest.mark.parametrize(
    ("data", "path", "message"), [c[1:] for c in SEGMENT_WARNINGS], ids=[c[0] for c in SEGMENT_WARNINGS]
)
def test_each_segment_warning_has_its_exact_path(data: dict[str, Any], path: str, message: str) -> None:
    assert _warnings_of(parse_segment, data, "segments.beta") == [f"{path}: {message}"]
    error = _strict_error(parse_segment, data, "segments.beta")
    assert (error.path, error.reason) == (path, message + STRICT_REFUSAL)
    using = flag(rules=[rule(clause("", "segmentMatch", "beta"))])
    parsed = parse_flag(using, strict=True)
    segment = parse_segment(copy.deepcopy(data), strict=True, warnings=[])
    snapshot = Snapshot({"f": parsed}, {"beta": segment})
    for context in CONTEXTS:
        result = snapshot.evaluate("f", parse_context(context))
        ours = (result.value, result.variation, result.reason.to_dict())
        assert ours == sdk_eval({"f": using}, {"beta": data}, "f", context), context


def test_a_never_matching_value_is_left_out_and_the_others_still_match() -> None:
    data = flag(rules=[rule(clause("age", "lessThan", "63", 10, True, 20))])
    parsed = parse_flag(data, strict=True, warnings=[])
    snapshot = Snapshot({"f": parsed}, {})
    verdicts = [
        snapshot.evaluate("f", parse_context({"kind": "user", "key": "k", "age": age})).variation
        for age in (5, 15, 25, 62)
    ]
    assert verdicts == [0, 0, 1, 1]  # under 20 (the largest number) matches; "63" and true never count
    assert parsed.data["rules"][0]["clauses"][0]["values"] == ["63", 10, True, 20]  # stored as written


def test_clean_data_has_no_warnings() -> None:
    assert _warnings_of(parse_flag, flag(rules=[rule(clause("age", "lessThan", 63))]), "flags.f") == []
    assert _warnings_of(parse_flag, flag(fallthrough=rollout((0, 40000), (1, 60000))), "flags.f") == []
    assert _warnings_of(parse_segment, {**SEGMENT, "rules": [{"clauses": [], "weight": 0}]}, "segments.beta") == []


def test_warnings_of_a_document_in_order() -> None:
    found: list[DataWarning] = []
    doc = {"flags": {"f": flag(offVariation=9), "g": {**flag(), "key": "g", "fallthrough": {}}}}
    parse_items(doc, warnings=found)
    assert [w.to_dict() for w in found] == [
        {"path": "flags.f.offVariation", "message": "variation index 9 is out of range (the flag has 2 variations)"
         + MALFORMED},
        {"path": "flags.g.fallthrough", "message": "needs a variation or a rollout" + MALFORMED},
    ]  # fmt: skip


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


# What the SDK refuses (types, required fields), what it crashes on, and relay's own limits stay refused.
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("segment-key-array", flag(rules=[rule(clause("", "segmentMatch", ["beta"]))]),
     "flags.f.rules[0].clauses[0].values[0]: segmentMatch needs segment keys (strings), got an array"),
    ("segment-key-object", flag(rules=[rule(clause("", "segmentMatch", "beta", {"k": 1}))]),
     "flags.f.rules[0].clauses[0].values[1]: segmentMatch needs segment keys (strings), got an object"),
    ("weight-float", flag(fallthrough={"rollout": {"variations": [{"variation": 0, "weight": 5.5}]}}),
     "flags.f.fallthrough.rollout.variations[0].weight: expected an integer, got the number 5.5"),
    ("variation-bool", flag(fallthrough={"variation": True}),
     "flags.f.fallthrough.variation: expected an integer, got a boolean"),
    ("no-values", flag(rules=[rule({"attribute": "a", "op": "in"})]),
     "flags.f.rules[0].clauses[0].values: is required"),
    ("key", flag(key="has space"), "flags.f.key: flag keys use only letters"),
    ("version", flag(version=-1), "flags.f.version: must not be negative"),
    ("depth", flag(variations=[_deep(70), 1]), "nested more than 64 levels deep"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_structure_is_refused_even_where_warnings_are_collected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as e:
        parse_flag(copy.deepcopy(data), path="flags.f", strict=True, warnings=[])
    assert message in str(e.value)
    assert "strict writes refuse" not in str(e.value)
