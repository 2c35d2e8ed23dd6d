"""Compiling clauses and bucketing into closures that evaluation calls directly."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from relay.evaluation.attrref import AttrRef, lookup
from relay.evaluation.context import DEFAULT_KIND, Context
from relay.evaluation.model import ClauseFn, EvalStateLike, MalformedFlag
from relay.evaluation.operators import Test, compile_operator, string_set

LONG_SCALE = float(0xFFFFFFFFFFFFFFF)  # 15 hex digits' maximum (also in codegen's inline rollouts)


def _never(_: Any) -> bool:
    return False


_CACHE: dict[tuple[Any, ...], ClauseFn] = {}
_CACHE_MAX = 100_000


def _hashable(values: list[Any]) -> tuple[Any, ...] | None:
    """Clause values as a cache key (types included: 1, 1.0 and true differ here), or None."""
    out = []
    for v in values:
        if isinstance(v, dict | list):
            return None
        out.append((type(v), v))
    return tuple(out)


def compile_clause(ref: AttrRef, context_kind: str | None, op: str, values: list[Any], negate: bool) -> ClauseFn:
    """The compiled clause, shared between identical clauses: a compiled clause holds no per-flag
    state, and identical clauses recur across flags and across versions of one flag (a toggle
    recompiles the flag, not its clauses)."""
    hashable = _hashable(values)
    if hashable is None:
        return _compile_clause(ref, context_kind, op, values, negate)
    key = (ref.raw, ref.components, context_kind, op, negate, hashable)
    fn = _CACHE.get(key)
    if fn is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        fn = _CACHE[key] = _compile_clause(ref, context_kind, op, values, negate)
    return fn


def _compile_clause(ref: AttrRef, context_kind: str | None, op: str, values: list[Any], negate: bool) -> ClauseFn:
    if op == "segmentMatch":
        return _segment_clause(values, negate)
    test: Test = compile_operator(op, values) or _never  # an unknown operator matches nothing
    if ref.is_kind:
        return _kind_clause(test, negate)
    kind = context_kind or DEFAULT_KIND
    if ref.error is not None:

        def malformed(ctx: Context, state: EvalStateLike) -> bool:
            # The SDK only notices a bad reference once it has a context of the clause's kind.
            if kind in ctx.by_kind:
                raise MalformedFlag(ref.error)
            return False

        return malformed
    first, rest = ref.components[0], ref.components[1:]
    if rest:

        def match_path(ctx: Context, state: EvalStateLike) -> bool:
            single = ctx.by_kind.get(kind)
            if single is None:
                return False
            value = single.attrs.get(first)
            for name in rest:
                if type(value) is not dict:
                    return False
                value = value.get(name)
            return attribute_verdict(value, test, negate)

        match_path.inline = ("path", kind, ref.components, string_set(op, values), test, negate)  # type: ignore[attr-defined]
        return match_path

    strings = string_set(op, values)
    if strings is not None:
        # The commonest clause of all, `in` on string values, with the test inlined.
        def match_strings(ctx: Context, state: EvalStateLike) -> bool:
            single = ctx.by_kind.get(kind)
            if single is None:
                return False
            value = single.attrs.get(first)
            if type(value) is str:
                return (value in strings) is not negate
            return attribute_verdict(value, test, negate)

        match_strings.inline = ("strings", kind, first, strings, test, negate)  # type: ignore[attr-defined]
        return match_strings

    # The common case, a top-level attribute, without the path walk. (The body of attribute_verdict is
    # repeated here, and inlined again by codegen: one call less on the hottest path.)
    def match(ctx: Context, state: EvalStateLike) -> bool:
        single = ctx.by_kind.get(kind)
        if single is None:
            return False
        value = single.attrs.get(first)
        if value is None:  # a missing attribute never matches, even negated
            return False
        if type(value) is list:
            for item in value:
                if test(item):
                    return not negate
            return negate
        return test(value) is not negate

    match.inline = ("test", kind, first, None, test, negate)  # type: ignore[attr-defined]
    return match


def attribute_verdict(value: Any, test: Test, negate: bool) -> bool:
    """A clause's verdict on an attribute value (None: absent)."""
    if value is None:  # a missing attribute never matches, even negated
        return False
    if type(value) is list:
        for item in value:
            if test(item):
                return not negate
        return negate
    return test(value) is not negate


def _kind_clause(test: Test, negate: bool) -> ClauseFn:
    def match(ctx: Context, state: EvalStateLike) -> bool:
        for single in ctx.singles:
            if test(single.kind):
                return not negate
        return negate

    return match


def _segment_clause(values: list[Any], negate: bool) -> ClauseFn:
    keys = tuple(v for v in values if isinstance(v, str))

    def match(ctx: Context, state: EvalStateLike) -> bool:
        segments = state.segments
        memo = state.memo
        for key in keys:
            segment = segments.get(key)
            if segment is None:
                continue
            hit = None if memo is None else memo.get(segment)  # known for this context already
            if hit is None:
                check = segment.check
                if check is not None and memo is not None:  # segment_matches' commonest path, direct
                    hit = memo[segment] = check(ctx, state)
                else:
                    hit = state.segment_matches(segment, ctx)
            if hit:
                return not negate
        return negate

    match.segment_keys = keys  # type: ignore[attr-defined]  # (relay.evaluation.generated.fusion needs to know)
    return match


def bucket_bound(threshold: float) -> bytes:
    """The digest bound equivalent to a bucket threshold: for every SHA-1 digest `d`,
    `bucket(d) < threshold` exactly when `d < bucket_bound(threshold)` (bytes compare as big-endian
    numbers), where `bucket(d) = (int.from_bytes(d, "big") >> 100) / LONG_SCALE` as compile_bucket
    computes it. That function is non-decreasing in its 60-bit integer (the int-to-float rounding
    and the division both are), so the buckets under a threshold are those of the integers below
    the first one at or over it, found here by bisection with the very same expression. Generated
    rollouts compare the digest itself: ~150 ns less per rollout than converting and dividing."""
    lo, hi = 0, 1 << 60  # the first integer whose bucket is >= threshold is in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if mid / LONG_SCALE >= threshold:
            hi = mid
        else:
            lo = mid + 1
    if lo == 1 << 60:  # every bucket is under the threshold: a bound above every 20-byte digest
        return b"\xff" * 21
    return (lo << 100).to_bytes(20, "big")


def compile_bucket(
    seed: int | None, item_key: str, salt: str, context_kind: str | None, bucket_by: AttrRef | None
) -> Callable[[Context], float]:
    """LaunchDarkly's bucket in [0, 1] for a context; -1 when the context lacks the kind."""
    kind = context_kind or DEFAULT_KIND
    prefix = f"{seed}." if seed is not None else f"{item_key}.{salt}."
    prefix_hash = hashlib.sha1(prefix.encode(), usedforsecurity=False)
    components = None if bucket_by is None else bucket_by.components
    error = None if bucket_by is None else bucket_by.error

    def bucket(ctx: Context) -> float:
        single = ctx.by_kind.get(kind)
        if single is None:
            return -1.0
        if components is None:
            value: Any = single.key
        elif error is not None:
            raise MalformedFlag(error)
        else:
            value = lookup(single.attrs, components)
        t = type(value)
        if t is not str:
            if t is not int:  # only strings and integers are bucketable; anything else is bucket 0
                return 0.0
            value = str(value)
        h = prefix_hash.copy()  # continuing a hash of the constant prefix: ~2x faster than hashing it all
        h.update(value.encode())
        # The first 15 hex digits of the SHA-1 are the top 60 of its 160 bits (shifting the whole
        # digest is cheaper than slicing its first 8 bytes).
        return (int.from_bytes(h.digest(), "big") >> 100) / LONG_SCALE

    if components is None:  # by key: what relay.evaluation.generated.codegen writes out inline
        bucket.by_key = (kind, prefix_hash)  # type: ignore[attr-defined]
    return bucket
