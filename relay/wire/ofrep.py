"""OpenFeature's Remote Evaluation Protocol: contexts in, LaunchDarkly results out as OFREP.

Context mapping (PROTOCOL.md §14.4, the convention LaunchDarkly's own providers use):
`targetingKey` is the key (else a string `key`), `kind` the kind (default user); `kind: "multi"`
makes the other top-level properties per-kind objects. Results: OFF → DISABLED; a fixed variation
chosen by targets or rules → TARGETING_MATCH; a rollout's pick → SPLIT; the fallthrough's fixed
variation → STATIC when the flag has no targeting at all, else DEFAULT; PREREQUISITE_FAILED → DEFAULT.
"""

from __future__ import annotations

from typing import Any

from relay.errors import InvalidContextError, OfrepError
from relay.evaluation import Context, Evaluation, Flag, ReasonKind, parse_context


def _single(attrs: dict[str, Any], kind: str | None) -> dict[str, Any]:
    out = {k: v for k, v in attrs.items() if k not in ("targetingKey", "key", "kind")}
    key = attrs.get("targetingKey", attrs.get("key"))
    if key is None or key == "":
        raise OfrepError(400, "TARGETING_KEY_MISSING", "the context has no targetingKey")
    if not isinstance(key, str):
        raise OfrepError(400, "INVALID_CONTEXT", "targetingKey must be a string")
    out["key"] = key
    if kind is not None:
        out["kind"] = kind
    return out


def to_context(body: Any) -> Context:
    if not isinstance(body, dict):
        raise OfrepError(400, "INVALID_CONTEXT", "the body must be a JSON object")
    ctx = body.get("context", {})
    if not isinstance(ctx, dict):
        raise OfrepError(400, "INVALID_CONTEXT", "context must be a JSON object")
    kind = ctx.get("kind", "user")
    if not isinstance(kind, str):
        raise OfrepError(400, "INVALID_CONTEXT", "kind must be a string")
    if kind == "multi":
        data: dict[str, Any] = {"kind": "multi"}
        for name, sub in ctx.items():
            if name in ("kind", "targetingKey"):
                continue
            if not isinstance(sub, dict):
                raise OfrepError(400, "INVALID_CONTEXT", f"context.{name} must be an object in a multi-kind context")
            data[name] = _single(sub, None)
    else:
        data = _single(ctx, kind)
    try:
        return parse_context(data)
    except InvalidContextError as e:
        raise OfrepError(400, "INVALID_CONTEXT", str(e)) from None


def _by_rollout(flag: Flag, result: Evaluation) -> bool:
    reason = result.reason
    if reason.kind is ReasonKind.RULE_MATCH and reason.rule_index is not None:
        chooser = flag.data["rules"][reason.rule_index]
    elif reason.kind is ReasonKind.FALLTHROUGH:
        chooser = flag.data.get("fallthrough") or {}
    else:
        return False
    return chooser.get("variation") is None and chooser.get("rollout") is not None


def _reason(flag: Flag, result: Evaluation) -> str:
    kind = result.reason.kind
    if kind is ReasonKind.OFF:
        return "DISABLED"
    if kind is ReasonKind.PREREQUISITE_FAILED:
        return "DEFAULT"
    if _by_rollout(flag, result):
        return "SPLIT"
    if kind is ReasonKind.FALLTHROUGH:
        d = flag.data
        targeted = d.get("targets") or d.get("contextTargets") or d.get("rules") or d.get("prerequisites")
        return "DEFAULT" if targeted else "STATIC"
    return "TARGETING_MATCH"


def _value(flag: Flag, value: Any) -> Any:
    # A float flag whose value happens to be whole must still read as a float (3.0, not 3).
    if type(value) is int and any(type(v) is float for v in flag.data.get("variations", ())):
        return float(value)
    return value


def evaluation(key: str, flag: Flag, result: Evaluation) -> tuple[int, dict[str, Any]]:
    """(status, body) of a single-flag evaluation, or a bulk item (status 200 means success)."""
    reason = result.reason
    if reason.kind is ReasonKind.ERROR:
        return 400, {"key": key, "errorCode": "PARSE_ERROR", "errorDetails": f"flag is malformed ({reason.error_kind})"}
    metadata: dict[str, Any] = {"ldReasonKind": str(reason.kind), "flagVersion": flag.version}
    if result.variation is not None:
        metadata["variationIndex"] = result.variation
    for name, value in (
        ("ruleIndex", reason.rule_index),
        ("ruleId", reason.rule_id),
        ("prerequisiteKey", reason.prerequisite_key),
    ):
        if value is not None:
            metadata[name] = value
    if reason.in_experiment:
        metadata["inExperiment"] = True
    body: dict[str, Any] = {"key": key, "reason": _reason(flag, result), "variant": None, "metadata": metadata}
    if result.variation is not None:
        body["variant"] = str(result.variation)
    if result.value is not None:  # absent value: the provider returns the caller's default
        body["value"] = _value(flag, result.value)
    return 200, body
