"""What browsers and mobile apps get: evaluated flags for one context, never the rules.

The JSON shape is LaunchDarkly's client-side one (`evalx`): per flag its value, variation, version,
and event hints (`trackEvents`, `trackReason`, `reason`, `debugEventsUntilDate`, `prerequisites`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from relay.errors import InvalidContextError, ValidationError
from relay.evaluation import Context, Evaluation, Flag, ReasonKind, parse_context
from relay.evaluation.context import shallow_json
from relay.wire import codec

Audience = Callable[[Flag], bool]
_URLSAFE = bytes.maketrans(b"-_", b"+/")


def for_browsers(flag: Flag) -> bool:
    return flag.client_side


def for_mobile(flag: Flag) -> bool:
    return flag.mobile


def encode_context(data: Any) -> str:
    """A context's JSON as client SDKs put it in URLs: base64url without padding."""
    return base64.urlsafe_b64encode(codec.dumps(data)).decode().rstrip("=")


def b64url_bytes(b64: str) -> bytes:
    """`base64.urlsafe_b64decode` of `b64` padded, without its two layers of argument handling
    (a fifth of decoding a context); the same bytes and the same errors."""
    return binascii.a2b_base64((b64 + "=" * (-len(b64) % 4)).encode("ascii").translate(_URLSAFE))


def decode_context(b64: str) -> Context:
    """A context from the base64url (padded or not) JSON that client SDKs put in URLs."""
    try:
        raw = b64url_bytes(b64)
    except (binascii.Error, ValueError):  # (UnicodeEncodeError is a ValueError)
        raise InvalidContextError("context", "not valid base64url") from None
    return context_from_json(raw)


def context_from_json(raw: bytes) -> Context:
    try:
        data = codec.loads(raw, what="context")
    except ValidationError as e:
        raise InvalidContextError(e.path, e.reason) from None
    ctx = parse_context(data, shallow=shallow_json(raw))
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


def evalx_body(flags: dict[str, Flag], results: dict[str, Evaluation], with_reasons: bool) -> bytes:
    """The `evalx` body for `results`, from each result's cached JSON fragment.

    Most results are prebuilt `Evaluation` objects (one per flag outcome), so the fragment
    `"key":{...}` of a (flag, result) pair is encoded once, kept with the result itself (see
    _Fragments), and reused by every request that lands on it: a body whose results are all known
    is one list comprehension (a loop over the flags with a cache lookup each cost 15 us of a
    100-flag body; the comprehension ~7). Error results can be shared module constants (MALFORMED_FLAG): they are
    encoded afresh each time (rare, and cheap next to the request)."""
    try:
        if with_reasons:
            parts = [result.memo.with_reasons for result in results.values()]  # type: ignore[attr-defined]
        else:
            parts = [result.memo.plain for result in results.values()]  # type: ignore[attr-defined]
    except AttributeError:  # some result not encoded yet
        parts = [_fragment(key, flags[key], result, with_reasons) for key, result in results.items()]
    return b"{" + b",".join(parts) + b"}"


# Where the fragments are kept, and why there. The core's results carry no client-side encoding
# of their own: `Evaluation.memo` is an opaque slot the core never reads, and this module, its one
# user, puts a _Fragments there; what it holds and when that is valid are known here alone. A map
# beside the results (by result id, identity-checked, or per flag) was measured first: a 100-flag
# body whose results are all known took 9-11 us against 3 from the slot, ~+8 us on a ~60 us
# uncached request (decode, evaluate, body); the slot's one indirection costs ~0.3 us of the body.
# Sound because every non-error result object belongs to exactly one flag object, whose fields
# (version, event hints) the fragment also shows: each parse of a flag builds its own results, and
# a changed flag is a new object (tests/wire/test_clientside.py checks this). Error results, which
# can be shared constants, are never kept.
class _Fragments:
    """A result's evalx fragment `"key":{...}`, without and with reasons: each unset until made."""

    __slots__ = ("plain", "with_reasons")


def _fragment(key: str, flag: Flag, result: Evaluation, with_reasons: bool) -> bytes:
    form = "with_reasons" if with_reasons else "plain"
    kept: _Fragments | None = getattr(result, "memo", None)
    fragment: bytes | None = None if kept is None else getattr(kept, form, None)
    if fragment is None:
        fragment = codec.dumps(key) + b":" + codec.dumps(flag_state(flag, result, with_reasons))
        if result.reason.kind is not ReasonKind.ERROR:
            if kept is None:
                kept = _Fragments()
                object.__setattr__(result, "memo", kept)  # (a frozen dataclass: a cache slot, not its value)
            setattr(kept, form, fragment)
    return fragment


def context_key(ctx: Context) -> bytes:
    """Equal for contexts that evaluate the same way (attribute order and privacy ignored)."""
    return codec.dumps([[s.kind, s.attrs] for s in ctx.singles], sort_keys=True)
