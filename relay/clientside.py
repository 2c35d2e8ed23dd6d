"""What browsers and mobile apps get: evaluated flags for one context, never the rules.

The JSON shape is LaunchDarkly's client-side one (`evalx`): per flag its value, variation, version,
and event hints (`trackEvents`, `trackReason`, `reason`, `debugEventsUntilDate`, `prerequisites`).
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from relay import codec
from relay.errors import InvalidContextError, ValidationError
from relay.evaluation import Context, Evaluation, Flag, ReasonKind, parse_context
from relay.evaluation.context import shallow_json

Audience = Callable[[Flag], bool]


def for_browsers(flag: Flag) -> bool:
    return flag.client_side


def for_mobile(flag: Flag) -> bool:
    return flag.mobile


def encode_context(data: Any) -> str:
    """A context's JSON as client SDKs put it in URLs: base64url without padding."""
    return base64.urlsafe_b64encode(codec.dumps(data)).decode().rstrip("=")


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


class BodyEncoder:
    """`evalx` bodies assembled from cached per-flag fragments.

    Most results are prebuilt `Evaluation` objects (one per flag outcome), so the JSON fragment
    `"key":{...}` for a (flag, result) pair is encoded once and reused by every request that lands
    on it. Fragments live on the flag object (`Flag.fragments`, without and with reasons; a changed
    flag is a new object), keyed by the result's id; entries hold the result itself, so an id
    cannot be reused while cached.

    A result met a second time is also put in a map by its id alone, so that a body whose every
    result is known is one list comprehension (a Python loop over the flags cost 15 us of a 100-flag
    body). That is sound because every non-error result object belongs to exactly one flag object:
    each parse of a flag builds its own (tests/test_clientside.py checks this). Error results can be
    shared module constants (MALFORMED_FLAG), so they always take the per-flag path."""

    def __init__(self, max_per_flag: int = 1024, max_known: int = 50_000) -> None:
        self.max_per_flag = max_per_flag  # results made per request (rare) must not pile up
        self.max_known = max_known
        # Per form (without, with reasons): fragment by result id, and the results kept alive.
        self._known: tuple[dict[int, bytes], ...] = ({}, {})
        self._alive: tuple[dict[int, Evaluation], ...] = ({}, {})

    def body(self, flags: dict[str, Flag], results: dict[str, Evaluation], with_reasons: bool) -> bytes:
        known = self._known[with_reasons]
        try:
            parts = [known[id(result)] for result in results.values()]
        except KeyError:
            parts = self._parts(flags, results, with_reasons)
        return b"{" + b",".join(parts) + b"}"

    def _parts(self, flags: dict[str, Flag], results: dict[str, Evaluation], with_reasons: bool) -> list[bytes]:
        known, alive = self._known[with_reasons], self._alive[with_reasons]
        parts = []
        for key, result in results.items():
            flag = flags[key]
            cache = flag.fragments[with_reasons]
            hit = cache.get(id(result))
            if hit is not None and hit[0] is result:
                parts.append(hit[1])
                if result.reason.kind is not ReasonKind.ERROR:
                    if len(known) >= self.max_known:
                        known.clear()
                        alive.clear()
                    known[id(result)] = hit[1]
                    alive[id(result)] = result
                continue
            fragment = codec.dumps(key) + b":" + codec.dumps(flag_state(flag, result, with_reasons))
            if len(cache) >= self.max_per_flag:
                cache.clear()
            cache[id(result)] = (result, fragment)
            parts.append(fragment)
        return parts


class ResponseCache:
    """Recent `evalx` bodies by (environment, data version, audience, reasons, context): a browser's
    context repeats across page loads, and the data version in the key retires entries on change."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._bodies: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: tuple[object, ...]) -> bytes | None:
        body = self._bodies.get(key)
        if body is None:
            self.misses += 1
            return None
        self.hits += 1
        self._bodies.move_to_end(key)
        return body

    def clear(self) -> None:
        self._bodies.clear()

    def put(self, key: tuple[object, ...], body: bytes) -> None:
        if self.max_entries <= 0:
            return
        self._bodies[key] = body
        if len(self._bodies) > self.max_entries:
            self._bodies.popitem(last=False)
