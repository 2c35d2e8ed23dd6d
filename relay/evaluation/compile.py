"""Parse, validate and compile flags and segments (LaunchDarkly's JSON data model).

One pass over the JSON checks every type (refusing, with the JSON path, anything LaunchDarkly's
SDKs would choke on), writes the canonical fully populated JSON that every SDK parses, and builds
the compiled form the evaluator walks. `strict=True` (the write path) also runs the checks of
relay.evaluation.builder: given a `warnings` list it collects what they find (the item is accepted
and evaluates exactly as the SDKs evaluate it), without one it refuses the first (strict writes).
"""

from __future__ import annotations

import re
from typing import Any

from relay.errors import ValidationError
from relay.evaluation.builder import Builder
from relay.evaluation.generated.codegen import compile_flag
from relay.evaluation.model import BROKEN, ContextTarget, Evaluation, Flag, FlagBody, Prerequisite, Reason, ReasonKind
from relay.evaluation.reader import DataWarning, Reader, TrustedReader, check_depth

KEY_PATTERN = re.compile(r"\A[A-Za-z0-9._-]{1,256}\Z")  # with fullmatch: "$" would let "a\n" through
_OFF = Reason(ReasonKind.OFF)
_TARGET = Reason(ReasonKind.TARGET_MATCH)
_FALLTHROUGH = Reason(ReasonKind.FALLTHROUGH)


def parse_header(r: Reader, what: str, strict: bool) -> tuple[str, int, bool]:
    version = r.req_int("version")
    deleted = r.opt_bool("deleted")
    key = r.opt_str("key") or "" if deleted else r.req_str("key")
    if strict and not deleted and not KEY_PATTERN.fullmatch(key):
        shown = key.encode("unicode_escape").decode()  # a newline shown as \n, not as a line break
        r.fail("key", f'{what} keys use only letters, digits, ".", "_" and "-" (1 to 256 characters), got "{shown}"')
    if strict and version < 0:
        r.fail("version", "must not be negative")
    return key, version, deleted


def parse_flag(
    data: Any,
    *,
    path: str = "flag",
    strict: bool = True,
    trusted: bool = False,
    warnings: list[DataWarning] | None = None,
) -> Flag:
    """Validate and compile one flag, or raise ValidationError naming the JSON path.

    `strict` also checks what the SDKs evaluate without error but only ever to MALFORMED_FLAG or
    to no match: appended to `warnings` when given (the flag is accepted), else refused.
    `trusted` is for canonical JSON relay validated and wrote itself (items loaded back from Redis):
    it skips the type tests and keeps `data` as the canonical form, falling back to the validating
    path if the item turns out not to be what relay wrote."""
    if trusted:
        try:
            return _trusted_flag(data, path)
        except ValidationError:
            raise
        except Exception:  # hand-edited data: let the validating path explain it
            pass
    r = Reader(data, path)
    if strict:
        check_depth(data, path)
    return _parse_flag(r, strict=strict, trusted=False, warnings=warnings)


def _trusted_flag(data: dict[str, Any], path: str) -> Flag:
    """The header now, from canonical JSON; the body is compiled on first evaluation (a node that
    loads 10,000 flags is ready once they are read, not once every rule is compiled)."""
    key, version = data["key"], data["version"]
    if type(key) is not str or type(version) is not int:
        raise TypeError("not canonical")
    if data.get("deleted") is True:
        return Flag(key, version, True, data)
    csa = data["clientSideAvailability"]
    on, client_side, mobile = data["on"], csa["usingEnvironmentId"], csa["usingMobileKey"]
    track, track_fallthrough = data.get("trackEvents", False), data.get("trackEventsFallthrough", False)
    debug_until = data.get("debugEventsUntilDate")
    if any(type(v) is not bool for v in (on, client_side, mobile, track, track_fallthrough)) or (
        debug_until is not None and type(debug_until) not in (int, float)
    ):
        raise TypeError("not canonical")
    return Flag(
        key,
        version,
        False,
        data,
        on=on,
        client_side=client_side,
        mobile=mobile,
        track_events=track,
        track_events_fallthrough=track_fallthrough,
        debug_events_until_date=debug_until,
        compiler=lambda: _lazy_body(data, path),
    )


def _lazy_body(data: dict[str, Any], path: str) -> FlagBody:
    try:
        return _parse_flag(TrustedReader(data, path), strict=False, trusted=True).body
    except Exception:  # not what relay wrote after all
        try:
            return _parse_flag(Reader(data, path), strict=False, trusted=False).body
        except ValidationError:
            return BROKEN


def _parse_flag(r: Reader, *, strict: bool, trusted: bool, warnings: list[DataWarning] | None = None) -> Flag:
    data = r.data
    key, version, deleted = parse_header(r, "flag", strict)
    if deleted:
        return Flag(key, version, True, {"key": key, "version": version, "deleted": True})
    variations = tuple(r.opt_list("variations"))
    b = Builder(strict, variations, trusted, warnings)
    on = r.opt_bool("on")
    salt = r.opt_str("salt") or ""
    off_variation = r.opt_int("offVariation")
    if off_variation is not None:
        b.check_index(r, "offVariation", off_variation)
    off_result = Evaluation(None, None, _OFF) if off_variation is None else b.result(off_variation, _OFF, ())

    prereq_readers = r.objects("prerequisites")
    prereq_keys = tuple(p.req_str("key") for p in prereq_readers)
    prerequisites = []
    for i, p in enumerate(prereq_readers):
        reason = Reason(ReasonKind.PREREQUISITE_FAILED, prerequisite_key=prereq_keys[i])
        failed = Evaluation(None, None, reason, prereq_keys[: i + 1])
        if off_variation is not None:
            failed = b.result(off_variation, reason, prereq_keys[: i + 1])
        prerequisites.append(Prerequisite(prereq_keys[i], p.req_int("variation"), failed))
        if strict and prereq_keys[i] == key:  # the SDKs' cycle check
            b.warn(p, "key", "the flag is its own prerequisite: evaluates to MALFORMED_FLAG while it is on")

    user_targets, context_targets, targets_canon, ctx_targets_canon = _targets(r, b, prereq_keys)

    rules, rules_canon, rule_track = [], [], []
    for i, rule in enumerate(r.objects("rules")):
        rule_id = rule.opt_str("id")
        fns, clauses_canon = b.clauses(rule)
        outcome, canon = b.outcome(rule, Reason(ReasonKind.RULE_MATCH, i, rule_id), key, salt, prereq_keys)
        track = rule.opt_bool("trackEvents")
        rules.append((fns, outcome))
        rule_track.append(track)
        rules_canon.append({**canon, "clauses": clauses_canon, "trackEvents": track})

    fall_reader = r.child(r.opt_dict("fallthrough") or {}, "fallthrough")
    fallthrough, fall_canon = b.outcome(fall_reader, _FALLTHROUGH, key, salt, prereq_keys)

    csa = r.opt_dict("clientSideAvailability")
    legacy_client_side = r.opt_bool("clientSide")
    if csa is not None:
        cr = r.child(csa, "clientSideAvailability")
        client_side, mobile = cr.opt_bool("usingEnvironmentId"), cr.opt_bool("usingMobileKey")
    else:
        client_side, mobile = legacy_client_side, True
    track_events = r.opt_bool("trackEvents")
    track_fallthrough = r.opt_bool("trackEventsFallthrough")
    debug_until = r.opt_number("debugEventsUntilDate")
    migration = r.opt_dict("migration")
    if migration is not None:
        r.child(migration, "migration").opt_int("checkRatio")
    r.opt_int("samplingRatio")
    r.opt_bool("excludeFromSummaries")

    canonical = (
        data
        if trusted
        else {
            **r.data,
            "key": key,
            "version": version,
            "on": on,
            "variations": list(variations),
            "offVariation": off_variation,
            "fallthrough": fall_canon,
            "prerequisites": [{**p.data} for p in prereq_readers],
            "targets": targets_canon,
            "contextTargets": ctx_targets_canon,
            "rules": rules_canon,
            "salt": salt,
            "clientSideAvailability": {"usingEnvironmentId": client_side, "usingMobileKey": mobile},
            "clientSide": client_side,
            "trackEvents": track_events,
            "trackEventsFallthrough": track_fallthrough,
            "debugEventsUntilDate": debug_until,
            "deleted": False,
        }
    )
    body = FlagBody(
        run=compile_flag(key, on, off_result, tuple(prerequisites), user_targets, context_targets, rules, fallthrough),
        prerequisites=tuple(prerequisites),
        variations=variations,
        segment_keys=frozenset(b.segment_keys),
        needs_state=bool(prerequisites or b.segment_keys),
        rule_track_events=tuple(rule_track),
    )
    return Flag(
        key,
        version,
        False,
        canonical,
        on=on,
        client_side=client_side,
        mobile=mobile,
        track_events=track_events,
        track_events_fallthrough=track_fallthrough,
        debug_events_until_date=debug_until,
        body=body,
    )


def _targets(
    r: Reader, b: Builder, prereqs: tuple[str, ...]
) -> tuple[dict[str, Evaluation], tuple[ContextTarget, ...], list[dict[str, Any]], list[dict[str, Any]]]:
    """Old-style user `targets` and `contextTargets`, in LaunchDarkly's lookup order."""
    user_lists: list[tuple[int, list[str]]] = []
    targets_canon = []
    target_readers = r.objects("targets")
    for t in target_readers:
        variation, values = t.req_int("variation"), t.str_list("values", required=True)
        kind = t.opt_str("contextKind")
        b.check_index(t, "variation", variation)
        if b.strict and kind and kind != "user":
            b.warn(t, "contextKind", f'"targets" hold user keys: the SDKs read these as user keys, not "{kind}" ones')
        user_lists.append((variation, values))
        targets_canon.append({**t.data, "values": values})
    ctx_canon = []
    context_targets = []
    user_variations: list[int] = []
    for t in r.objects("contextTargets"):
        kind = t.opt_str("contextKind") or "user"
        variation, values = t.req_int("variation"), t.str_list("values", required=True)
        b.check_index(t, "variation", variation)
        b.check_kind(t, "contextKind", kind)
        ctx_canon.append({**t.data, "values": values})
        if kind == "user":
            if b.strict and values:
                b.warn(t, "values", _USER_ENTRY_VALUES)
            user_variations.append(variation)
            # A user entry points at the first `targets` list with the same variation.
            values = next((vals for var, vals in user_lists if var == variation), [])
        result = b.result(variation, _TARGET, prereqs)
        context_targets.append(ContextTarget(kind, frozenset(values), result))
    if b.strict and context_targets:
        _unread_targets(b, target_readers, user_lists, user_variations)
    user_targets: dict[str, Evaluation] = {}
    if not context_targets:
        for variation, values in user_lists:
            result = b.result(variation, _TARGET, prereqs)
            for v in values:
                user_targets.setdefault(v, result)  # the first list naming a key wins
    return user_targets, tuple(context_targets), targets_canon, ctx_canon


_USER_ENTRY_VALUES = (
    'a user entry takes its keys from the first "targets" entry with its variation: '
    "LaunchDarkly's Python SDK ignores these values"
)


def _unread_targets(
    b: Builder, readers: list[Reader], user_lists: list[tuple[int, list[str]]], user_variations: list[int]
) -> None:
    """With `contextTargets`, the SDKs read a `targets` entry only through a user entry of the same
    variation, and then only the first `targets` entry with it: the others target nobody."""
    first: dict[int, int] = {}
    for i, (variation, _) in enumerate(user_lists):
        first.setdefault(variation, i)
    read = {first[v] for v in user_variations if v in first}
    for i, (variation, values) in enumerate(user_lists):
        if values and i not in read:
            b.warn(
                readers[i],
                "values",
                f'never read: with "contextTargets", the SDKs read the user keys of "targets" only through a '
                f'user entry there with variation {variation}, and only the first such "targets" entry',
            )
