"""SDK analytics events as relay stores them: what experiments read, and nothing else.

An SDK's batch is inflated JSON: whole contexts with every attribute (in each index and feature
event), summaries of counters, custom data. relay keeps, per event (docs/events.md is the schema):

    feature  {"kind": "feature", "key": flag, "version": N, "variation": I,
              "contextKeys": {kind: key, ...}, "creationDate": ms}
             + "inExperiment": true   when the evaluation's reason says so
             + "value": V             when it is a scalar (a string of up to 64 characters)
             + "prereqOf": flag       when it was a prerequisite's evaluation
    custom   {"kind": "custom", "key": event key, "contextKeys": {kind: key, ...}, "creationDate": ms}
             + "metricValue": x       when it is a finite number

Context keys come from `context` (event schema 4: a single or multi-kind context), `contextKeys`,
or the older schemas' `user` and `userKey` (kind "user"). Every other event is only counted, by
kind: `summary`, `index`, `identify`, `debug`, `other` (a kind relay does not know), `no_variation`
(a feature event without a variation index: the SDK served its default), and `invalid` (not an
object, or a field of the wrong type or beyond its length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from relay.wire import codec

MAX_KEY = 1024  # characters of a flag, event or context key; longer: the event is invalid
MAX_KIND = 64  # characters of a context kind
MAX_KINDS = 16  # context kinds in one event's context
MAX_VALUE = 64  # characters of a string `value` kept on a feature event
COUNTED = ("summary", "index", "identify", "debug")


@dataclass(slots=True)
class Compacted:
    """A batch made compact: `events` (a JSON array, `stored` of them) and the rest counted by kind."""

    events: bytes
    stored: int
    dropped: dict[str, int] = field(default_factory=dict)


def compact_batch(batch: list[Any]) -> Compacted:
    """The events of a parsed batch that experiments need, compact (see the module's docstring)."""
    kept: list[dict[str, Any]] = []
    dropped: dict[str, int] = {}
    for event in batch:
        compact, why = _compact(event)
        if compact is not None:
            kept.append(compact)
        else:
            dropped[why] = dropped.get(why, 0) + 1
    return Compacted(codec.dumps(kept), len(kept), dropped)


def read_events(raw: bytes) -> list[dict[str, Any]]:
    """A stored batch's `events` field, for readers (the experiments' aggregator, tests)."""
    events = codec.loads(raw, what="events")
    if not isinstance(events, list):
        raise ValueError("a stored events field is a JSON array")
    return events


def _compact(event: Any) -> tuple[dict[str, Any] | None, str]:
    if not isinstance(event, dict):
        return None, "invalid"
    kind = event.get("kind")
    if kind == "feature":
        return _feature(event)
    if kind == "custom":
        return _custom(event)
    return None, kind if kind in COUNTED else "other"


def _feature(event: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    key, keys, created = _key(event.get("key")), context_keys(event), _time(event.get("creationDate"))
    if key is None or keys is None or created is None:
        return None, "invalid"
    variation = event.get("variation")
    if variation is None:
        return None, "no_variation"
    version = event.get("version")
    if not _index(variation) or (version is not None and not _index(version)):
        return None, "invalid"
    out: dict[str, Any] = {"kind": "feature", "key": key}
    if version is not None:
        out["version"] = version
    out["variation"] = variation
    out["contextKeys"] = keys
    out["creationDate"] = created
    reason = event.get("reason")
    if isinstance(reason, dict) and reason.get("inExperiment") is True:
        out["inExperiment"] = True
    value = event.get("value")
    if _scalar(value):
        out["value"] = value
    prereq = _key(event.get("prereqOf"))
    if prereq is not None:
        out["prereqOf"] = prereq
    return out, ""


def _custom(event: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    key, keys, created = _key(event.get("key")), context_keys(event), _time(event.get("creationDate"))
    if key is None or keys is None or created is None:
        return None, "invalid"
    out: dict[str, Any] = {"kind": "custom", "key": key, "contextKeys": keys, "creationDate": created}
    metric = event.get("metricValue")
    if _number(metric):
        out["metricValue"] = metric
    return out, ""


def context_keys(event: dict[str, Any]) -> dict[str, str] | None:
    """The event's context keys by kind, wherever its schema puts them; None if it names none."""
    context = event.get("context")
    if isinstance(context, dict):
        kind = context.get("kind", "user")
        if kind == "multi":
            pairs = [(k, v.get("key") if isinstance(v, dict) else None) for k, v in context.items() if k != "kind"]
        else:
            pairs = [(kind, context.get("key"))]
    elif isinstance(event.get("contextKeys"), dict):
        pairs = list(event["contextKeys"].items())
    elif isinstance(event.get("user"), dict):
        pairs = [("user", event["user"].get("key"))]
    elif "userKey" in event:
        pairs = [("user", event["userKey"])]
    else:
        return None
    if not pairs or len(pairs) > MAX_KINDS:
        return None
    keys: dict[str, str] = {}
    for kind, key in pairs:
        if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KIND or _key(key) is None:
            return None
        keys[kind] = key
    return keys


def _key(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_KEY else None


def _time(value: Any) -> int | None:
    if not _number(value) or not 0 <= value < 2**53:  # ms since the epoch; past 2**53 an int would not survive JSON
        return None
    return int(value)


def _index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _scalar(value: Any) -> bool:
    """null, a boolean, a number or a short string: a JSON object or array is left out."""
    return (
        value is None
        or isinstance(value, bool)
        or _number(value)
        or (isinstance(value, str) and len(value) <= MAX_VALUE)
    )


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)
