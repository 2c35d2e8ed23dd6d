"""LaunchDarkly's Python SDK 9.18.4 evaluator as a test oracle, beside relay's evaluator."""

from __future__ import annotations

from typing import Any

from ldclient.context import Context as SDKContext
from ldclient.impl.evaluator import Evaluator
from ldclient.impl.events.types import EventFactory
from ldclient.impl.model import FeatureFlag, Segment

from relay.errors import InvalidContextError
from relay.evaluation import Snapshot, parse_context, parse_flag, parse_segment

Detail = tuple[Any, int | None, dict[str, Any]]


def _with_defaults(items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {"key": k, "version": 1, **v} for k, v in items.items()}


def sdk_eval(flags: dict[str, Any], segments: dict[str, Any], key: str, context: dict[str, Any]) -> Detail:
    """The SDK's (value, variation index, reason) for a new-format context."""
    sdk_flags = {k: FeatureFlag(v) for k, v in _with_defaults(flags).items()}
    sdk_segments = {k: Segment(v) for k, v in _with_defaults(segments).items()}
    ctx = SDKContext.from_dict(context)
    if not ctx.valid:
        return None, None, {"kind": "ERROR", "errorKind": "USER_NOT_SPECIFIED"}
    evaluator = Evaluator(sdk_flags.get, sdk_segments.get, lambda key: (None, "NOT_CONFIGURED"))
    detail = evaluator.evaluate(sdk_flags[key], ctx, EventFactory(False)).detail
    return detail.value, detail.variation_index, detail.reason


def relay_eval(
    flags: dict[str, Any], segments: dict[str, Any], key: str, context: dict[str, Any], *, strict: bool = False
) -> Detail:
    compiled = {k: parse_flag(v, strict=strict) for k, v in _with_defaults(flags).items()}
    compiled_segments = {k: parse_segment(v, strict=strict) for k, v in _with_defaults(segments).items()}
    try:
        ctx = parse_context(context)
    except InvalidContextError:
        ctx = None
    result = Snapshot(compiled, compiled_segments).evaluate(key, ctx)
    return result.value, result.variation, result.reason.to_dict()


def both(flags: dict[str, Any], segments: dict[str, Any], key: str, context: dict[str, Any]) -> Detail:
    """relay's result, after asserting that the SDK agrees with it."""
    ours = relay_eval(flags, segments, key, context)
    theirs = sdk_eval(flags, segments, key, context)
    assert ours == theirs, f"relay {ours} != LaunchDarkly SDK {theirs}"
    return ours
