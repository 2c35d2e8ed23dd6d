"""Stored SDK events (relay.wire.events): the exact bytes of a compact batch, what each SDK schema
gives, and what is left out (counted by kind)."""

from __future__ import annotations

from typing import Any

import pytest

from relay.wire import codec
from relay.wire.events import MAX_KEY, compact_batch, context_keys, read_events

ANN = {"kind": "user", "key": "ann", "name": "Ann", "email": "ann@example.com", "groups": ["a"] * 50}
MULTI = {"kind": "multi", "user": {"key": "ann", "name": "Ann"}, "org": {"key": "acme", "plan": "gold"}}


def feature(**fields: Any) -> dict[str, Any]:
    return {
        "kind": "feature",
        "creationDate": 1718000000123,
        "key": "checkout",
        "version": 7,
        "context": ANN,
        "variation": 1,
        "value": True,
        "default": False,
        "reason": {"kind": "RULE_MATCH", "ruleIndex": 0, "ruleId": "r0", "inExperiment": True},
        **fields,
    }


def custom(**fields: Any) -> dict[str, Any]:
    return {"kind": "custom", "creationDate": 1718000000456, "key": "purchase", "contextKeys": {"user": "ann"}} | fields


def test_a_batch_is_stored_as_these_bytes() -> None:
    batch = [
        feature(),
        custom(metricValue=12.5, data={"basket": ["x"] * 100}),
        {"kind": "summary", "startDate": 1, "endDate": 2, "features": {"checkout": {"counters": []}}},
        {"kind": "index", "creationDate": 1, "context": ANN},
    ]
    out = compact_batch(batch)
    assert out.events == (
        b'[{"kind":"feature","key":"checkout","version":7,"variation":1,"contextKeys":{"user":"ann"},'
        b'"creationDate":1718000000123,"inExperiment":true,"value":true},'
        b'{"kind":"custom","key":"purchase","contextKeys":{"user":"ann"},"creationDate":1718000000456,"metricValue":12.5}]'
    )
    assert out.stored == 2 and out.dropped == {"summary": 1, "index": 1}
    assert read_events(out.events) == codec.loads(out.events)
    assert len(out.events) * 4 < len(codec.dumps(batch))  # the attributes and the custom data stay behind


def test_context_keys_come_from_every_schema_an_sdk_sends() -> None:
    assert context_keys({"context": ANN}) == {"user": "ann"}
    assert context_keys({"context": {"key": "bob"}}) == {"user": "bob"}  # no kind: a user
    assert context_keys({"context": MULTI}) == {"user": "ann", "org": "acme"}
    assert context_keys({"contextKeys": {"user": "ann", "device": "d1"}}) == {"user": "ann", "device": "d1"}
    assert context_keys({"user": {"key": "old", "name": "Old"}}) == {"user": "old"}  # event schema 3
    assert context_keys({"userKey": "older"}) == {"user": "older"}  # schema 2
    assert context_keys({}) is None


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({"kind": "identify", "context": ANN, "creationDate": 1}, "identify"),
        ({**feature(), "kind": "debug"}, "debug"),
        ({"kind": "made-up"}, "other"),
        ("not an object", "invalid"),
        (feature(variation=None), "no_variation"),
        (feature(variation=-1), "invalid"),
        (feature(variation=True), "invalid"),
        (feature(version="7"), "invalid"),
        (feature(key=""), "invalid"),
        (feature(key="k" * (MAX_KEY + 1)), "invalid"),
        (feature(context={"kind": "user", "key": 12}), "invalid"),
        (feature(context={"kind": "multi", **{f"k{i}": {"key": "x"} for i in range(17)}}), "invalid"),
        (custom(contextKeys={}), "invalid"),
        (custom(creationDate="yesterday"), "invalid"),
        (custom(creationDate=1e300), "invalid"),
        (custom(creationDate=-5), "invalid"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_what_is_only_counted(event: Any, why: str) -> None:
    out = compact_batch([event])
    assert (out.events, out.stored, out.dropped) == (b"[]", 0, {why: 1})


def test_what_a_feature_event_keeps_and_leaves_out() -> None:
    (plain,) = read_events(compact_batch([feature(reason={"kind": "FALLTHROUGH"}, value={"big": "json"})]).events)
    assert "inExperiment" not in plain and "value" not in plain  # an object value is left out
    (short,) = read_events(compact_batch([feature(value="v" * 64, prereqOf="parent", version=None)]).events)
    assert short["value"] == "v" * 64 and short["prereqOf"] == "parent" and "version" not in short
    (long,) = read_events(compact_batch([feature(value="v" * 65)]).events)
    assert "value" not in long
    (multi,) = read_events(compact_batch([feature(context=MULTI)]).events)
    assert multi["contextKeys"] == {"user": "ann", "org": "acme"}
    (float_time,) = read_events(compact_batch([custom(creationDate=1718000000456.9, metricValue=True)]).events)
    assert float_time["creationDate"] == 1718000000456 and "metricValue" not in float_time  # a boolean is no metric
