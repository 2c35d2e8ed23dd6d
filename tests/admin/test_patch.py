"""PATCH bodies: RFC 7396's own examples (its appendix A), JSON Patch through jsonpatch, and the refusals."""

from __future__ import annotations

from typing import Any

import pytest

from relay.admin.patch import JSON_PATCH, MERGE_PATCH, apply, json_patch, merge_patch
from relay.errors import UnsupportedMediaType, ValidationError

RFC_7396_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7396_APPENDIX_A, ids=lambda v: repr(v)[:20])
def test_merge_patch_is_rfc_7396(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_merge_patch_leaves_its_target_alone() -> None:
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


def test_the_kill_switch_and_a_comment() -> None:
    item = {"key": "k", "on": True, "variations": [False, True]}
    patched, comment = apply(MERGE_PATCH, item, {"on": False, "comment": "incident 7"})
    assert patched == {**item, "on": False} and comment == "incident 7"


def test_json_patch_bare_or_with_a_comment() -> None:
    item = {"key": "k", "on": True, "rules": []}
    ops = [{"op": "test", "path": "/on", "value": True}, {"op": "replace", "path": "/on", "value": False}]
    assert apply(JSON_PATCH, item, ops) == ({**item, "on": False}, "")
    assert apply(JSON_PATCH, item, {"patch": ops, "comment": "why"}) == ({**item, "on": False}, "why")
    assert item["on"] is True  # not in place


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/on", "value": False}],  # a failed test refuses the whole patch
        [{"op": "remove", "path": "/missing"}],
        [{"op": "frobnicate", "path": "/on"}],
        [{"path": "/on"}],
        {"op": "replace"},
        [{"op": "add", "path": "no-slash", "value": 1}],
    ],
    ids=["failed-test", "missing-path", "unknown-op", "no-op", "not-a-list", "bad-pointer"],
)
def test_json_patch_refusals_are_validation_errors(ops: Any) -> None:
    with pytest.raises(ValidationError) as e:
        json_patch({"on": True}, ops)
    assert e.value.path.startswith("patch")


def test_other_media_types_and_shapes_are_refused() -> None:
    with pytest.raises(UnsupportedMediaType):
        apply("application/json", {}, {"on": False})
    with pytest.raises(ValidationError):
        apply(MERGE_PATCH, {}, ["not", "an", "object"])
    with pytest.raises(ValidationError):
        apply(MERGE_PATCH, {}, {"comment": 7})
