"""Parse, validate and compile segments, and whole `{"flags", "segments"}` documents."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from relay.errors import ValidationError
from relay.evaluation.attrref import for_bucket_by
from relay.evaluation.builder import Builder
from relay.evaluation.clauses import compile_bucket
from relay.evaluation.compile import parse_flag, parse_header
from relay.evaluation.generated.codegen import compile_segment
from relay.evaluation.model import EvalStateLike, Flag, Segment, SegmentRule
from relay.evaluation.reader import DataWarning, Reader, TrustedReader, check_depth, json_type

if TYPE_CHECKING:
    from relay.evaluation.context import Context


def _segment_targets(r: Reader, name: str, b: Builder) -> tuple[tuple[str, frozenset[str]], ...]:
    out = []
    for t in r.objects(name):
        kind = t.opt_str("contextKind")
        b.check_kind(t, "contextKind", kind)
        out.append((kind or "user", frozenset(t.str_list("values", required=True))))
    return tuple(out)


def parse_segment(
    data: Any,
    *,
    path: str = "segment",
    strict: bool = True,
    trusted: bool = False,
    warnings: list[DataWarning] | None = None,
) -> Segment:
    """Validate and compile one segment, or raise ValidationError naming the JSON path.
    `strict`, `warnings` and `trusted`: as for `parse_flag`."""
    if trusted:
        try:
            return _parse_segment(TrustedReader(data, path), strict=False, trusted=True)
        except ValidationError:
            raise
        except Exception:  # hand-edited data: let the validating path explain it
            pass
    r = Reader(data, path)
    if strict:
        check_depth(data, path)
    return _parse_segment(r, strict=strict, trusted=False, warnings=warnings)


def _parse_segment(r: Reader, *, strict: bool, trusted: bool, warnings: list[DataWarning] | None = None) -> Segment:
    key, version, deleted = parse_header(r, "segment", strict)
    if deleted:
        return Segment(key, version, True, {"key": key, "version": version, "deleted": True})
    b = Builder(strict, trusted=trusted, warnings=warnings)
    included = r.str_list("included")
    excluded = r.str_list("excluded")
    included_contexts = _segment_targets(r, "includedContexts", b)
    excluded_contexts = _segment_targets(r, "excludedContexts", b)
    salt = r.opt_str("salt") or ""
    rules, rules_canon = [], []
    for rule in r.objects("rules"):
        fns, clauses_canon = b.clauses(rule)
        rollout_kind = rule.opt_str("rolloutContextKind")
        b.check_kind(rule, "rolloutContextKind", rollout_kind)
        bucket_by = for_bucket_by(rule.opt_str("bucketBy"), rollout_kind)
        b.check_ref(rule, "bucketBy", bucket_by)
        weight = rule.opt_int("weight")
        if strict and weight is not None and not 0 <= weight <= 100000:
            b.warn(rule, "weight", f"weight {weight} is outside 0..100000: the SDKs compare it as it is")
        rule.opt_str("id")
        bucket = None if weight is None else compile_bucket(None, key, salt, rollout_kind, bucket_by)
        rules.append(SegmentRule(fns, weight, bucket))
        rules_canon.append({**rule.data, "clauses": clauses_canon})
    unbounded = r.opt_bool("unbounded")
    unbounded_kind = r.opt_str("unboundedContextKind")
    generation = r.opt_int("generation")
    canonical = (
        r.data
        if trusted
        else {
            **r.data,
            "key": key,
            "version": version,
            "included": included,
            "excluded": excluded,
            "includedContexts": [{**t} for t in r.opt_list("includedContexts")],
            "excludedContexts": [{**t} for t in r.opt_list("excludedContexts")],
            "rules": rules_canon,
            "salt": salt,
            "unbounded": unbounded,
            "generation": generation,
            "deleted": False,
        }
    )
    if not trusted:
        for t in (*canonical["includedContexts"], *canonical["excludedContexts"]):
            t["values"] = list(t["values"])
    segment = Segment(
        key=key,
        version=version,
        deleted=False,
        data=canonical,
        included=frozenset(included),
        excluded=frozenset(excluded),
        included_contexts=included_contexts,
        excluded_contexts=excluded_contexts,
        rules=tuple(rules),
        unbounded=unbounded,
        unbounded_context_kind=unbounded_kind or "user",
        generation=generation,
        segment_keys=frozenset(b.segment_keys),
    )
    if not unbounded and not b.segment_keys:  # (the others' membership needs the state's stack or status)
        _compile_on_first_use(segment)
    return segment


def _compile_on_first_use(segment: Segment) -> None:
    """Give the segment its generated membership check when first asked (generating one costs ~10x
    parsing the segment, and a node loading thousands of segments may use few of them)."""

    owner = weakref.ref(segment)  # not the segment itself: stub and segment would be a reference cycle

    def first(ctx: Context, state: EvalStateLike) -> bool:
        s = owner()
        assert s is not None  # whoever calls its check holds the segment
        check = compile_segment(s.key, s.included, s.included_contexts, s.excluded, s.excluded_contexts, s.rules)
        object.__setattr__(s, "check", check)  # frozen for users, not for its own cache
        return check(ctx, state)

    object.__setattr__(segment, "check", first)


def parse_items(
    data: Any, *, strict: bool = True, default_version: int | None = None, warnings: list[DataWarning] | None = None
) -> tuple[dict[str, Flag], dict[str, Segment]]:
    """LaunchDarkly's `{"flags": {...}, "segments": {...}}` document, all or nothing.
    With `default_version`, items may omit `version` (hand-written files; relay assigns versions).
    `strict` and `warnings`: as for `parse_flag`."""
    r = Reader(data, "document")
    flags: dict[str, Flag] = {}
    segments: dict[str, Segment] = {}
    parsers: tuple[tuple[str, Callable[..., Any], dict[str, Any]], ...] = (
        ("flags", parse_flag, flags),
        ("segments", parse_segment, segments),
    )
    for name, parse, out in parsers:
        value = r.data.get(name)
        if value is not None and not isinstance(value, dict):
            raise ValidationError(name, f"expected an object, got {json_type(value)}")
        items = value or {}
        for map_key, item in items.items():
            where = f"{name}.{map_key}"
            if isinstance(item, dict) and "key" in item and item["key"] != map_key:
                raise ValidationError(f"{where}.key", f'"{item["key"]}" does not match its map key "{map_key}"')
            if isinstance(item, dict) and "key" not in item:
                item = {**item, "key": map_key}
            if isinstance(item, dict) and default_version is not None and "version" not in item:
                item = {**item, "version": default_version}
            out[map_key] = parse(item, path=where, strict=strict, warnings=warnings)
    return flags, segments
