"""What browsers and mobile apps get: evaluated flags for one context, never the rules.

The JSON shape is LaunchDarkly's client-side one (`evalx`): per flag its value, variation, version,
and event hints (`trackEvents`, `trackReason`, `reason`, `debugEventsUntilDate`, `prerequisites`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from relay import codec
from relay.errors import InvalidContextError, ValidationError
from relay.evaluation import Context, Evaluation, Flag, ReasonKind, parse_context

Audience = Callable[[Flag], bool]


def for_browsers(flag: Flag) -> bool:
    return flag.client_side


def for_mobile(flag: Flag) -> bool:
    return flag.mobile


def decode_context(b64: str) -> Context:
    """A context from the base64url (padded or not) JSON that client SDKs put in URLs."""
    try:
        raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    except (binascii.Error, ValueError):
        raise InvalidContextError("context", "not valid base64url") from None
    return context_from_json(raw)


def context_from_json(raw: bytes) -> Context:
    try:
        data = codec.loads(raw, what="context")
    except ValidationError as e:
        raise InvalidContextError(e.path, e.reason) from None
    ctx = parse_context(data)
    if any(s.key == "" for s in ctx.singles):
        raise InvalidContextError("key", "context key must not be empty")
    return ctx


def is_experiment(flag: Flag, result: Evaluation) -> bool:
    reason = result.reason
    if reason.in_experiment:
        return True
    if reason.kind is ReasonKind.FALLTHROUGH:
        return flag.track_events_fallthrough
    if reason.kind is ReasonKind.RULE_MATCH and reason.rule_index is not None:
        tracks = flag.body.rule_track_events
        return reason.rule_index < len(tracks) and tracks[reason.rule_index]
    return False


def flag_state(flag: Flag, result: Evaluation, with_reasons: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "value": result.value,
        "variation": result.variation,
        "version": flag.version,
        "flagVersion": flag.version,  # what SDKs put in events; relay has no separate state version
    }
    experiment = is_experiment(flag, result)
    if flag.track_events or experiment:
        out["trackEvents"] = True
    if experiment:
        out["trackReason"] = True
    if with_reasons or experiment:
        out["reason"] = result.reason.to_dict()
    if flag.debug_events_until_date:
        out["debugEventsUntilDate"] = flag.debug_events_until_date
    if result.prerequisites:
        out["prerequisites"] = list(result.prerequisites)
    return out


def evaluate_for_client(
    flags: dict[str, Flag], results: dict[str, Evaluation], with_reasons: bool
) -> dict[str, dict[str, Any]]:
    return {key: flag_state(flags[key], result, with_reasons) for key, result in results.items()}
