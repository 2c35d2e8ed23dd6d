"""Property tests for relay.evaluation: parsers fail only with ValidationError, and anything that parses
evaluates without raising. Deterministic (derandomized, no example database) so CI is repeatable."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ldclient.context import Context as SDKContext
from ldclient.impl.evaluator import Evaluator
from ldclient.impl.events.types import EventFactory
from ldclient.impl.model import FeatureFlag
from ldclient.impl.model import Segment as SDKSegment

from relay.errors import ValidationError
from relay.evaluation import (
    DataWarning,
    Evaluation,
    Flag,
    Segment,
    Snapshot,
    parse_context,
    parse_flag,
    parse_items,
    parse_segment,
)
from relay.evaluation.clauses import LONG_SCALE, bucket_bound
from relay.wire import codec
from relay.wire.clientside import context_key

SETTINGS = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

REASON_KINDS = frozenset({"OFF", "FALLTHROUGH", "TARGET_MATCH", "RULE_MATCH", "PREREQUISITE_FAILED", "ERROR"})

# --- arbitrary JSON -------------------------------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)

# --- valid data -----------------------------------------------------------------------------------------
# Small shared pools, so that targets, clauses and contexts actually meet and every branch is reached.

FLAG_KEYS = ("f0", "f1", "f2")
SEGMENT_KEYS = ("s0", "s1")
KINDS = ("user", "org", "device")
CONTEXT_KEYS = ("k1", "k2", "k3", "")  # "" is only used by old-format users
CUSTOM_ATTRS = ("email", "tier", "groups", "address", "/address/country", "a~b", "a/b")
CLAUSE_ATTRS = (*CUSTOM_ATTRS, "key", "name", "anonymous", "kind", "/address/country", "/a~1b")
STRINGS = ("a", "ab", "b", "xyz", "k1", "org", "user")
DATES = ("2017-12-06T07:00:00Z", "2017-12-06T00:00:00.000-07:00", 1512543600000, 0, 1512543600000.5)
SEMVERS = ("1.0.0", "2.0.0", "2.0", "2", "2.0.0-rc.1", "1.2.3+build")
REGEXES = ("^a", "b$", "[0-9]+", ".*", "x|y", "^$")

numbers = st.integers(-3, 3) | st.floats(-5, 5, allow_nan=False)
small_scalars = st.sampled_from(STRINGS + DATES + SEMVERS) | numbers | st.booleans() | st.none()
attr_values = small_scalars | st.lists(small_scalars, max_size=3) | st.fixed_dictionaries({"country": small_scalars})

CLAUSE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "in": small_scalars,
    "startsWith": st.sampled_from(STRINGS),
    "endsWith": st.sampled_from(STRINGS),
    "contains": st.sampled_from(STRINGS),
    "matches": st.sampled_from(REGEXES),
    "lessThan": numbers,
    "lessThanOrEqual": numbers,
    "greaterThan": numbers,
    "greaterThanOrEqual": numbers,
    "before": st.sampled_from(DATES),
    "after": st.sampled_from(DATES),
    "semVerEqual": st.sampled_from(SEMVERS),
    "semVerLessThan": st.sampled_from(SEMVERS),
    "semVerGreaterThan": st.sampled_from(SEMVERS),
    "segmentMatch": st.sampled_from((*SEGMENT_KEYS, "no-such-segment")),
}


def optional(draw: st.DrawFn, out: dict[str, Any], name: str, strategy: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        out[name] = draw(strategy)


# Strategies are built once (per variation count) and reused: constructing them inside every draw
# made generation, not relay, dominate the run time.
bools = st.booleans()
mostly_true = st.sampled_from((True, True, True, False))
kinds = st.sampled_from(KINDS)
clause_attrs = st.sampled_from(CLAUSE_ATTRS)
target_keys = st.lists(st.sampled_from(CONTEXT_KEYS[:3]), max_size=3, unique=True)
ops = st.sampled_from(sorted(CLAUSE_VALUES))
clause_value_lists = {op: st.lists(values, max_size=3) for op, values in CLAUSE_VALUES.items()}


@st.composite
def clauses(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(ops)
    clause: dict[str, Any] = {
        # segmentMatch ignores the attribute; every other operator needs a valid one.
        "attribute": "" if op == "segmentMatch" else draw(clause_attrs),
        "op": op,
        "values": draw(clause_value_lists[op]),
        "negate": draw(bools),
    }
    optional(draw, clause, "contextKind", kinds)
    return clause


clause_lists = st.lists(clauses(), max_size=3)
weight_totals = st.sampled_from((100000, 100000, 99999, 0)) | st.integers(0, 100000)


@functools.cache
def indexes(n_variations: int) -> st.SearchStrategy[int]:
    return st.integers(0, n_variations - 1)


@st.composite
def rollouts(draw: st.DrawFn, n_variations: int) -> dict[str, Any]:
    count = draw(st.integers(1, 3))
    total = draw(weight_totals)
    # Weights come from sorted cut points, so they never sum past 100000 (strict refuses that).
    cuts = sorted(draw(st.integers(0, total)) for _ in range(count - 1))
    bounds = [0, *cuts, total]
    rollout: dict[str, Any] = {
        "variations": [
            {
                "variation": draw(indexes(n_variations)),
                "weight": bounds[i + 1] - bounds[i],
                "untracked": draw(bools),
            }
            for i in range(count)
        ]
    }
    optional(draw, rollout, "kind", st.sampled_from(("rollout", "experiment")))
    optional(draw, rollout, "contextKind", kinds)
    optional(draw, rollout, "bucketBy", clause_attrs)
    optional(draw, rollout, "seed", st.integers(-(2**31), 2**31))
    return rollout


@functools.cache
def variation_or_rollout(n_variations: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"variation": indexes(n_variations)}) | st.fixed_dictionaries(
        {"rollout": rollouts(n_variations)}
    )


@functools.cache
def targets(n_variations: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(st.fixed_dictionaries({"variation": indexes(n_variations), "values": target_keys}), max_size=2)


@functools.cache
def context_targets(n_variations: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    entry = st.fixed_dictionaries({"contextKind": kinds, "variation": indexes(n_variations), "values": target_keys})
    return st.lists(entry, max_size=2)


@functools.cache
def prerequisites(key: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    # A flag may not name itself (strict refuses that); longer cycles are evaluation errors.
    others = st.sampled_from([k for k in (*FLAG_KEYS, "no-such-flag") if k != key])
    entries = st.lists(st.fixed_dictionaries({"key": others, "variation": st.integers(0, 3)}), min_size=1, max_size=2)
    return st.sampled_from(([], [])) | entries  # mostly none: a failed prerequisite hides the rest


variation_lists = st.lists(attr_values, min_size=1, max_size=4)


@st.composite
def valid_flags(draw: st.DrawFn, key: str) -> dict[str, Any]:
    variations = draw(variation_lists)
    n = len(variations)
    rules = []
    for _ in range(draw(st.integers(0, 3))):
        rule: dict[str, Any] = {"clauses": draw(clause_lists), **draw(variation_or_rollout(n))}
        optional(draw, rule, "id", st.sampled_from(("r1", "r2", "")))
        optional(draw, rule, "trackEvents", bools)
        rules.append(rule)
    return {
        "key": key,
        "version": draw(st.integers(1, 1000)),
        "deleted": False,
        "on": draw(mostly_true),
        "salt": draw(st.sampled_from(("", "salty"))),
        "variations": variations,
        "offVariation": draw(st.none() | indexes(n)),
        "fallthrough": draw(variation_or_rollout(n)),
        "prerequisites": draw(prerequisites(key)),
        "targets": draw(targets(n)),
        "contextTargets": draw(context_targets(n)),
        "rules": rules,
        "trackEvents": draw(bools),
        "trackEventsFallthrough": draw(bools),
        "clientSideAvailability": {"usingEnvironmentId": draw(bools), "usingMobileKey": draw(bools)},
    }


segment_keys_lists = st.lists(st.sampled_from(CONTEXT_KEYS[:3]), max_size=2, unique=True)
segment_targets = st.lists(st.fixed_dictionaries({"contextKind": kinds, "values": segment_keys_lists}), max_size=2)
segment_clause_lists = st.lists(clauses(), max_size=2)


@st.composite
def valid_segments(draw: st.DrawFn, key: str, unbounded: bool = True) -> dict[str, Any]:
    rules = []
    for _ in range(draw(st.integers(0, 2))):
        rule: dict[str, Any] = {"clauses": draw(segment_clause_lists)}
        optional(draw, rule, "id", st.sampled_from(("sr1", "sr2")))
        optional(draw, rule, "weight", st.integers(0, 100000))
        optional(draw, rule, "bucketBy", clause_attrs)
        optional(draw, rule, "rolloutContextKind", kinds)
        rules.append(rule)
    segment = {
        "key": key,
        "version": draw(st.integers(1, 1000)),
        "deleted": False,
        "included": draw(segment_keys_lists),
        "excluded": draw(segment_keys_lists),
        "includedContexts": draw(segment_targets),
        "excludedContexts": draw(segment_targets),
        "rules": rules,
        "salt": draw(st.sampled_from(("", "salty"))),
    }
    if unbounded and draw(st.integers(0, 9)) == 0:  # rare: a Big Segment with no store behind it
        segment["unbounded"] = True
        segment["unboundedContextKind"] = draw(kinds)
        segment["generation"] = draw(st.none() | st.integers(1, 5))
    return segment


names = st.none() | st.sampled_from(STRINGS)
custom_attrs = st.dictionaries(st.sampled_from(CUSTOM_ATTRS), attr_values, max_size=4)
private_attrs = st.lists(st.sampled_from(CUSTOM_ATTRS), max_size=2)


@st.composite
def context_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"key": draw(st.sampled_from(CONTEXT_KEYS[:3]) | st.text(min_size=1, max_size=6))}
    optional(draw, body, "name", names)
    optional(draw, body, "anonymous", bools)
    optional(draw, body, "_meta", st.fixed_dictionaries({"privateAttributes": private_attrs}))
    body.update(draw(custom_attrs))
    return body


kind_sets = st.lists(kinds, min_size=1, max_size=3, unique=True)


@st.composite
def new_contexts(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(kind_sets)
    if len(chosen) == 1 and draw(bools):
        return {"kind": chosen[0], **draw(context_bodies())}
    return {"kind": "multi", **{kind: draw(context_bodies()) for kind in chosen}}


@st.composite
def old_users(draw: st.DrawFn) -> dict[str, Any]:
    user: dict[str, Any] = {"key": draw(st.sampled_from(CONTEXT_KEYS))}  # the old format allows ""
    optional(draw, user, "name", names)
    optional(draw, user, "anonymous", st.none() | bools)
    for attr in ("email", "country", "firstName"):
        optional(draw, user, attr, names)
    optional(draw, user, "custom", custom_attrs)
    optional(draw, user, "privateAttributeNames", private_attrs)
    optional(draw, user, "secondary", names)
    return user


contexts = new_contexts() | old_users()


@st.composite
def environments(draw: st.DrawFn, unbounded: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    flags = {key: draw(valid_flags(key)) for key in FLAG_KEYS}
    segments = {key: draw(valid_segments(key, unbounded)) for key in SEGMENT_KEYS}
    return flags, segments


# --- mutation -------------------------------------------------------------------------------------------

JsonPath = tuple[str | int, ...]


def _paths(value: Any, prefix: JsonPath = ()) -> list[JsonPath]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_paths(item, (*prefix, index)))
    return out


@st.composite
def mutated(draw: st.DrawFn, documents: st.SearchStrategy[Any]) -> Any:
    """A valid document with one sub-value replaced by arbitrary JSON, or removed."""
    document = copy.deepcopy(draw(documents))
    path = draw(st.sampled_from(_paths(document)))
    if not path:
        return draw(json_values)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if draw(st.integers(0, 3)) == 0:
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return document


def flag_docs() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(FLAG_KEYS).flatmap(valid_flags)


def segment_docs() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(SEGMENT_KEYS).flatmap(valid_segments)


def items_docs() -> st.SearchStrategy[dict[str, Any]]:
    return environments().map(lambda env: {"flags": env[0], "segments": env[1]})


# --- (a) parsers only ever raise ValidationError ------------------------------------------------------


def parses(parse: Callable[..., Any], data: Any, **kwargs: Any) -> Any | None:
    """The parsed result, or None after checking the ValidationError is well formed. Any other
    exception escapes and fails the test."""
    try:
        return parse(data, **kwargs)
    except ValidationError as e:
        assert isinstance(e.path, str) and e.path, f"empty path: {e!r}"
        assert isinstance(e.reason, str) and e.reason, f"empty reason: {e!r}"
        return None


@SETTINGS
@given(data=json_values, strict=st.booleans())
def test_parsers_on_arbitrary_json(data: Any, strict: bool) -> None:
    parses(parse_flag, data, strict=strict)
    parses(parse_segment, data, strict=strict)
    parses(parse_items, data, strict=strict)
    parses(parse_context, data)


@SETTINGS
@given(data=st.dictionaries(st.sampled_from(("flags", "segments", "key", "version")), json_values, max_size=3))
def test_parse_items_on_arbitrary_shapes(data: Any) -> None:
    parses(parse_items, data, strict=False)
    parses(parse_items, data, strict=True)


@SETTINGS
@given(data=mutated(flag_docs()), strict=st.booleans(), context=contexts)
def test_mutated_flags(data: Any, strict: bool, context: Any) -> None:
    flag = parses(parse_flag, data, strict=strict)
    if flag is not None:  # whatever parses must also evaluate without raising
        check_evaluation(Snapshot({flag.key: flag}, {}), flag.key, flag.data, parses(parse_context, context))


@SETTINGS
@given(data=mutated(segment_docs()), strict=st.booleans())
def test_mutated_segments(data: Any, strict: bool) -> None:
    parses(parse_segment, data, strict=strict)


@SETTINGS
@given(data=mutated(contexts))
def test_mutated_contexts(data: Any) -> None:
    parses(parse_context, data)


@SETTINGS
@given(data=mutated(items_docs()), strict=st.booleans(), context=contexts)
def test_mutated_items(data: Any, strict: bool, context: Any) -> None:
    parsed = parses(parse_items, data, strict=strict)
    if parsed is not None:
        flags, segments = parsed
        snapshot = Snapshot(flags, segments)
        ctx = parses(parse_context, context)
        for key, flag in flags.items():
            check_evaluation(snapshot, key, flag.data, ctx)


# --- (b) valid data always evaluates ------------------------------------------------------------------


def check_evaluation(snapshot: Snapshot, key: str, flag_data: dict[str, Any], context: Any) -> Evaluation:
    result = snapshot.evaluate(key, context)
    assert isinstance(result, Evaluation)
    reason = result.reason.to_dict()
    assert reason["kind"] in REASON_KINDS, reason
    variations = flag_data.get("variations") or []
    if reason["kind"] == "ERROR":
        assert result.value is None and result.variation is None, result
    elif result.variation is None:  # an off variation of null
        assert reason["kind"] in ("OFF", "PREREQUISITE_FAILED") and result.value is None, result
    else:
        assert 0 <= result.variation < len(variations), result
        assert result.value == variations[result.variation], result
    return result


@SETTINGS
@given(env=environments(), context=contexts, strict=st.booleans())
def test_valid_flags_always_evaluate(env: tuple[dict[str, Any], dict[str, Any]], context: Any, strict: bool) -> None:
    flag_json, segment_json = env
    # Valid data must be accepted in both modes (parse_* raise on anything else, failing the test).
    # Strict as the write path parses: what LaunchDarkly's SDKs evaluate without error but a writer
    # should hear of (weights short of 100000, say) is a warning, refused only by strict writes.
    notes: list[DataWarning] | None = [] if strict else None
    flags: dict[str, Flag] = {
        k: parse_flag(v, path=f"flags.{k}", strict=strict, warnings=notes) for k, v in flag_json.items()
    }
    segments: dict[str, Segment] = {
        k: parse_segment(v, path=f"segments.{k}", strict=strict, warnings=notes) for k, v in segment_json.items()
    }
    snapshot = Snapshot(flags, segments)
    ctx = parse_context(context)
    results = {key: check_evaluation(snapshot, key, flag_json[key], ctx) for key in flags}
    assert snapshot.evaluate("no-such-flag", ctx).reason.to_dict() == {"kind": "ERROR", "errorKind": "FLAG_NOT_FOUND"}
    everything = snapshot.evaluate_all(ctx)
    assert everything.keys() == results.keys()
    for key, result in results.items():
        assert everything[key].reason.to_dict() == result.reason.to_dict()
        assert (everything[key].value, everything[key].variation) == (result.value, result.variation)


# --- (c) valid data evaluates exactly as the Python SDK 9.18.4 does -----------------------------------
# docs/evaluation-api.md promises SDK-identical results; differential testing against the SDK's own
# evaluator covers combinations the harness files never try. Big Segments are left out (the SDK needs
# a membership store there) and contexts are new-format only (the SDK cannot parse old users).


def sdk_result(
    flag_json: dict[str, Any], segment_json: dict[str, Any], key: str, context: dict[str, Any]
) -> tuple[Any, int | None, dict[str, Any]]:
    flags = {k: FeatureFlag(copy.deepcopy(v)) for k, v in flag_json.items()}
    segments = {k: SDKSegment(copy.deepcopy(v)) for k, v in segment_json.items()}
    evaluator = Evaluator(flags.get, segments.get, lambda _key: (None, "NOT_CONFIGURED"))
    sdk_context = SDKContext.from_dict(context)
    assert sdk_context.valid, sdk_context.error
    detail = evaluator.evaluate(flags[key], sdk_context, EventFactory(False)).detail
    return detail.value, detail.variation_index, detail.reason


@SETTINGS
@given(env=environments(unbounded=False), context=new_contexts(), strict=st.booleans())
def test_valid_flags_evaluate_like_the_sdk(
    env: tuple[dict[str, Any], dict[str, Any]], context: dict[str, Any], strict: bool
) -> None:
    flag_json, segment_json = env
    notes: list[DataWarning] | None = [] if strict else None  # strict as the write path parses
    snapshot = Snapshot(
        {k: parse_flag(v, strict=strict, warnings=notes) for k, v in flag_json.items()},
        {k: parse_segment(v, strict=strict, warnings=notes) for k, v in segment_json.items()},
    )
    ctx = parse_context(context)
    for key in flag_json:
        result = snapshot.evaluate(key, ctx)
        expected = sdk_result(flag_json, segment_json, key, context)
        assert (result.value, result.variation, result.reason.to_dict()) == expected, key


# --- (d) whatever strict parsing accepts can be written back out ---------------------------------------
# orjson reads 1024 levels of nesting but writes only 255: deep values used to pass the parsers and then
# fail every encoding (a crash in the write path, a 500 per request). Nesting is refused with its path.


def _nest(levels: int, as_object: bool) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"x": value} if as_object else [value]
    return value


deep_values = st.builds(_nest, st.integers(1, 400), st.booleans())


@st.composite
def deepened(draw: st.DrawFn, documents: st.SearchStrategy[Any]) -> Any:
    """A valid document with one sub-value replaced by a deeply nested one."""
    document = copy.deepcopy(draw(documents))
    path = draw(st.sampled_from(_paths(document)[1:]))
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = draw(deep_values)
    return document


@settings(SETTINGS, max_examples=150)
@given(data=deepened(flag_docs()), context=deepened(new_contexts()))
def test_strictly_parsed_flags_and_contexts_encode(data: Any, context: Any) -> None:
    flag = parses(parse_flag, data, strict=True)
    if flag is not None:
        codec.dumps(flag.data)
    ctx = parses(parse_context, context)
    if ctx is not None:
        context_key(ctx)


def _bucket(digest: bytes) -> float:
    """The bucket as clauses.compile_bucket computes it from a digest."""
    return (int.from_bytes(digest, "big") >> 100) / LONG_SCALE


def _near_bound(threshold: float, low_bits: int) -> list[bytes]:
    """Digests whose top 60 bits are at and around the first integer `bucket_bound` names."""
    bound = bucket_bound(threshold)
    if len(bound) > 20:
        return []
    first = int.from_bytes(bound, "big") >> 100
    near = [x for x in (first - 2, first - 1, first, first + 1) if 0 <= x < 1 << 60]
    return [((x << 100) | low).to_bytes(20, "big") for x in near for low in (0, low_bits, (1 << 100) - 1)]


@SETTINGS
@given(
    threshold=st.one_of(
        st.integers(-100_000, 200_000).map(lambda w: w / 100000.0),  # what weights and rollouts give
        st.floats(-1.0, 2.0, allow_nan=False),
        st.sampled_from([0.0, 1.0, 1 / 3, 0.1 + 0.2, 5e-324, 1 - 2**-53]),
    ),
    digests=st.lists(st.binary(min_size=20, max_size=20), max_size=20),
    low_bits=st.integers(0, (1 << 100) - 1),
)
def test_digest_bounds_agree_with_bucket_thresholds(threshold: float, digests: list[bytes], low_bits: int) -> None:
    # Generated rollouts compare a digest with bucket_bound(t) instead of its bucket with t.
    bound = bucket_bound(threshold)
    for digest in [*digests, *_near_bound(threshold, low_bits), bytes(20), b"\xff" * 20]:
        assert (_bucket(digest) < threshold) == (digest < bound), (threshold, digest.hex())
