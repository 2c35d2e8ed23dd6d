"""Validation with JSON paths, strictness, canonical output, and context parsing."""

from __future__ import annotations

import contextlib
import json
from importlib import resources
from typing import Any, ClassVar

import jsonschema
import pytest

from relay.errors import InvalidContextError, ValidationError
from relay.evaluation import parse_context, parse_flag, parse_items, parse_segment
from relay.evaluation.builder import STRICT_REFUSAL


def good_flag(**fields: Any) -> dict[str, Any]:
    return {
        "key": "checkout",
        "version": 3,
        "on": True,
        "variations": [False, True],
        "fallthrough": {"variation": 0},
        **fields,
    }


def refused(data: Any, *, strict: bool = True, path: str = "flags.checkout") -> str:
    with pytest.raises(ValidationError) as e:
        parse_flag(data, path=path, strict=strict)
    return str(e.value)


BAD_TYPES = [
    ({"version": 1.0}, "flags.checkout.version: expected an integer, got the number 1.0"),
    ({"version": True}, "flags.checkout.version: expected an integer, got a boolean"),
    ({"on": 1}, "flags.checkout.on: expected a boolean, got the integer 1"),
    ({"variations": {}}, "flags.checkout.variations: expected an array, got an object"),
    ({"offVariation": "0"}, 'flags.checkout.offVariation: expected an integer, got the string "0"'),
    ({"targets": [{"variation": 0}]}, "flags.checkout.targets[0].values: is required"),
    ({"targets": [{"variation": 0, "values": ["a", 2]}]}, "flags.checkout.targets[0].values[1]: expected a string"),
    (
        {"rules": [{"variation": 0, "clauses": [{"attribute": "a", "values": []}]}]},
        "rules[0].clauses[0].op: is required",
    ),
    (
        {"rules": [{"variation": 0, "clauses": [{"op": "in", "values": []}]}]},
        "rules[0].clauses[0].attribute: is required",
    ),
    (
        {"rules": [{"variation": 0, "clauses": [{"attribute": "a", "op": "in"}]}]},
        "rules[0].clauses[0].values: is required",
    ),
    (
        {"fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 5.5}]}}},
        "fallthrough.rollout.variations[0].weight",
    ),
    ({"prerequisites": [{"key": "p"}]}, "flags.checkout.prerequisites[0].variation: is required"),
    ({"salt": 5}, "flags.checkout.salt: expected a string"),
    ({"key": None}, "flags.checkout.key: is required"),
]


@pytest.mark.parametrize(("change", "message"), BAD_TYPES, ids=[m.split(":")[0] for _, m in BAD_TYPES])
@pytest.mark.parametrize("strict", [True, False])
def test_type_errors_are_always_refused_with_the_path(change: dict[str, Any], message: str, strict: bool) -> None:
    assert message in refused(good_flag(**change), strict=strict)


SEMANTIC = [
    (
        {
            "rules": [{"variation": 0, "clauses": []}] * 2
            + [{"variation": 0, "clauses": [{"attribute": "a", "op": "equalz", "values": []}]}]
        },
        None,
    ),
    ({"offVariation": 2}, "flags.checkout.offVariation: variation index 2 is out of range (the flag has 2 variations)"),
    ({"fallthrough": {}}, "flags.checkout.fallthrough: needs a variation or a rollout"),
    ({"fallthrough": {"rollout": {"variations": []}}}, "fallthrough.rollout.variations: a rollout needs at least one"),
    ({"rules": [{"variation": 0, "clauses": [{"attribute": "", "op": "in", "values": [1]}]}]}, "attribute reference"),
    (
        {
            "rules": [
                {"variation": 0, "clauses": [{"contextKind": "user", "attribute": "/a//b", "op": "in", "values": [1]}]}
            ]
        },
        'clauses[0].attribute: invalid attribute reference "/a//b"',
    ),
    (
        {"rules": [{"variation": 0, "clauses": [{"attribute": "a", "op": "matches", "values": ["(x"]}]}]},
        "regular expression",
    ),
    (
        {"rules": [{"variation": 0, "clauses": [{"attribute": "a", "op": "semVerEqual", "values": ["v1"]}]}]},
        "semantic version",
    ),
    (
        {"rules": [{"variation": 0, "clauses": [{"attribute": "a", "op": "before", "values": ["2020-01-01"]}]}]},
        "timestamp",
    ),
    (
        {"rules": [{"variation": 0, "clauses": [{"attribute": "a", "op": "lessThan", "values": ["5"]}]}]},
        "number values",
    ),
    ({"fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 60000}] * 2}}}, "more than 100000"),
    (
        {
            "fallthrough": {
                "rollout": {"bucketBy": "/x/", "contextKind": "org", "variations": [{"variation": 0, "weight": 1}]}
            }
        },
        "bucketBy",
    ),
    ({"contextTargets": [{"contextKind": "multi", "variation": 0, "values": []}]}, "contextTargets[0].contextKind"),
    ({"key": "has space"}, "flags.checkout.key: flag keys use only letters"),
    ({"prerequisites": [{"key": "checkout", "variation": 0}]}, "its own prerequisite"),
]


@pytest.mark.parametrize(("change", "message"), SEMANTIC, ids=[str(i) for i in range(len(SEMANTIC))])
def test_strict_mode_refuses_what_could_only_be_malformed(change: dict[str, Any], message: str | None) -> None:
    text = refused(good_flag(**change))
    assert message is None or message in text
    if message is None:
        op = 'flags.checkout.rules[2].clauses[0].op: unknown operator "equalz"'
        assert text == f"{op}: it matches no value, as in LaunchDarkly's SDKs" + STRICT_REFUSAL
    parse_flag(good_flag(**change), strict=False)  # lenient mode evaluates these to MALFORMED_FLAG instead


def test_canonical_json_is_fully_populated() -> None:
    f = parse_flag(
        {"key": "k", "version": 2, "fallthrough": {"variation": 0}, "variations": [1], "description": "kept"}
    )
    assert f.data == {
        "key": "k",
        "version": 2,
        "description": "kept",
        "on": False,
        "variations": [1],
        "offVariation": None,
        "fallthrough": {"variation": 0},
        "prerequisites": [],
        "targets": [],
        "contextTargets": [],
        "rules": [],
        "salt": "",
        "clientSideAvailability": {"usingEnvironmentId": False, "usingMobileKey": True},
        "clientSide": False,
        "trackEvents": False,
        "trackEventsFallthrough": False,
        "debugEventsUntilDate": None,
        "deleted": False,
    }
    rule = {"variation": 0, "clauses": [{"attribute": "a", "op": "in", "values": [1]}]}
    data = parse_flag({**f.data, "rules": [rule]}).data["rules"][0]
    assert data == {
        "variation": 0,
        "trackEvents": False,
        "clauses": [{"attribute": "a", "op": "in", "values": [1], "negate": False}],
    }


def test_client_side_availability_defaults() -> None:
    assert parse_flag(good_flag(clientSide=True)).client_side is True
    assert parse_flag(good_flag()).mobile is True
    f = parse_flag(good_flag(clientSideAvailability={"usingEnvironmentId": True, "usingMobileKey": False}))
    assert (f.client_side, f.mobile) == (True, False)


def test_tombstones() -> None:
    f = parse_flag({"key": "gone", "version": 9, "deleted": True})
    assert f.deleted and f.data == {"key": "gone", "version": 9, "deleted": True}
    assert parse_segment({"version": 2, "deleted": True}).deleted


def test_segments_validate_with_paths() -> None:
    with pytest.raises(ValidationError, match=r"^segments.beta.rules\[0\].weight: expected an integer"):
        parse_segment({"key": "beta", "version": 1, "rules": [{"clauses": [], "weight": "5"}]}, path="segments.beta")
    with pytest.raises(ValidationError, match=r"includedContexts\[0\].values: is required"):
        parse_segment({"key": "b", "version": 1, "includedContexts": [{"contextKind": "org"}]})


def test_items_document_is_all_or_nothing_and_keys_must_match() -> None:
    doc = {"flags": {f"f{i}": good_flag(key=f"f{i}") for i in range(100)}, "segments": {}}
    assert len(parse_items(doc)[0]) == 100
    doc["flags"]["f57"]["rules"] = [{"variation": 0, "clauses": [{"attribute": "a", "op": "nope", "values": []}]}]
    with pytest.raises(ValidationError, match=r"^flags.f57.rules\[0\].clauses\[0\].op: unknown operator"):
        parse_items(doc)
    with pytest.raises(ValidationError, match=r'^flags.a.key: "b" does not match its map key "a"'):
        parse_items({"flags": {"a": good_flag(key="b")}})
    assert parse_items({"flags": {"nokey": {"version": 1, "fallthrough": {"variation": 0}, "variations": [1]}}})[0]


def test_published_json_schema_agrees_with_the_parser() -> None:
    schema = json.loads(resources.files("relay").joinpath("evaluation/flag.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    demo = json.loads(resources.files("relay").joinpath("cli/demo_flags.json").read_text())
    flags, segments = parse_items(demo)
    canonical = {"flags": {k: f.data for k, f in flags.items()}, "segments": {k: s.data for k, s in segments.items()}}
    jsonschema.validate(demo, schema)
    jsonschema.validate(canonical, schema)
    # JSON Schema counts 1.0 as an integer, so the float-version case is the parser's alone.
    for change, _ in BAD_TYPES[1:12]:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"flags": {"checkout": good_flag(**change)}}, schema)


class TestContexts:
    def test_single_kind(self) -> None:
        c = parse_context({"kind": "org", "key": "a:b%", "name": "Acme", "plan": {"tier": 1}, "gone": None})
        s = c.get("org")
        assert s is not None and s.attrs == {
            "key": "a:b%",
            "kind": "org",
            "anonymous": False,
            "name": "Acme",
            "plan": {"tier": 1},
        }
        assert c.fully_qualified_key == "org:a%3Ab%25"

    def test_multi_kind(self) -> None:
        c = parse_context({"kind": "multi", "user": {"key": "u"}, "org": {"key": "o", "anonymous": True}})
        assert c.kinds == ("org", "user") and c.fully_qualified_key == "org:o:user:u"
        assert parse_context({"kind": "multi", "org": {"key": "o"}}).fully_qualified_key == "org:o"

    def test_old_user_format(self) -> None:
        c = parse_context(
            {
                "key": "u1",
                "email": "a@b.c",
                "firstName": None,
                "anonymous": None,
                "custom": {"groups": ["beta"], "tier": 3, "key": "dropped", "kind": "dropped"},
                "privateAttributeNames": ["email"],
                "secondary": "ignored",
            }
        )
        s = c.get("user")
        assert s is not None and s.key == "u1" and s.private == ("email",)
        assert s.attrs == {
            "email": "a@b.c",
            "groups": ["beta"],
            "tier": 3,
            "key": "u1",
            "kind": "user",
            "anonymous": False,
        }
        assert c.fully_qualified_key == "u1"

    INVALID: ClassVar[list[tuple[Any, str]]] = [
        ("not an object", "context: expected an object"),
        ({"kind": "user"}, "key: context key must not be missing or empty"),
        ({"kind": "user", "key": ""}, "key: context key"),
        ({"kind": "kind", "key": "k"}, 'kind: "kind" is not a valid context kind'),
        ({"kind": "us er", "key": "k"}, "contains characters"),
        ({"kind": 5, "key": "k"}, "kind: expected a string"),
        ({"kind": None, "key": "k"}, "kind: expected a string"),
        ({"kind": "multi"}, "at least one kind"),
        ({"kind": "multi", "org": "o"}, "org: expected an object"),
        ({"kind": "multi", "org": {"key": ""}}, "org.key: context key"),
        ({"kind": "user", "key": "k", "name": 5}, "name: expected a string or null"),
        ({"kind": "user", "key": "k", "anonymous": "yes"}, "anonymous: expected a boolean"),
        ({"kind": "user", "key": "k", "_meta": {"privateAttributes": [1]}}, "_meta.privateAttributes"),
        ({"kind": "user", "key": "k", "": 1}, "attribute names must not be empty"),
        ({"key": 5}, "key: a user's key is required"),
        ({"key": "k", "custom": []}, "custom: expected an object"),
        ({"key": "k", "email": 5}, "email: expected a string"),
    ]

    @pytest.mark.parametrize(("data", "message"), INVALID, ids=[m for _, m in INVALID])
    def test_invalid(self, data: Any, message: str) -> None:
        with pytest.raises(InvalidContextError) as e:
            parse_context(data)
        assert message in str(e.value)


def test_trusted_parsing_of_canonical_json_matches_the_validating_path() -> None:
    import random

    from relay.evaluation import Snapshot
    from tests.generators import generate_dataset

    data = generate_dataset(seed=11, n_flags=80, n_segments=20, n_contexts=40)
    flags = {k: parse_flag(v, strict=False) for k, v in data.flags.items()}
    segments = {k: parse_segment(v, strict=False) for k, v in data.segments.items()}
    trusted_flags = {k: parse_flag(f.data, trusted=True) for k, f in flags.items()}
    trusted_segments = {k: parse_segment(s.data, trusted=True) for k, s in segments.items()}
    assert {k: f.data for k, f in trusted_flags.items()} == {k: f.data for k, f in flags.items()}
    a, b = Snapshot(flags, segments), Snapshot(trusted_flags, trusted_segments)
    contexts = []
    for c in data.contexts:
        with contextlib.suppress(InvalidContextError):
            contexts.append(parse_context(c))
    for ctx in random.Random(3).sample(contexts, 20):
        assert a.evaluate_all(ctx) == b.evaluate_all(ctx)


def test_trusted_parsing_falls_back_to_validation_for_hand_edited_data() -> None:
    from relay.evaluation import Snapshot

    # A broken header is refused at once, with the validating path's message.
    with pytest.raises(ValidationError, match=r"^flags.x.on: expected a boolean"):
        parse_flag({**parse_flag(good_flag(key="x")).data, "on": "yes"}, path="flags.x", trusted=True)
    # A broken body is found when first evaluated (trusted flags compile lazily): MALFORMED_FLAG.
    broken = {**parse_flag(good_flag(key="x")).data, "rules": [{"variation": 0, "clauses": 5}]}
    flag = parse_flag(broken, path="flags.x", trusted=True)
    assert not flag.compiled
    result = Snapshot({"x": flag}, {}).evaluate("x", parse_context({"key": "u"}))
    assert result.reason.to_dict() == {"kind": "ERROR", "errorKind": "MALFORMED_FLAG"} and flag.compiled
    with pytest.raises(ValidationError, match=r"^segments.s.included\[1\]: expected a string"):
        parse_segment({"key": "s", "version": 1, "included": ["a", 1]}, path="segments.s", trusted=True)
