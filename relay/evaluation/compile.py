"""Parse, validate and compile flags and segments (LaunchDarkly's JSON data model).

One pass over the JSON checks every type (refusing, with the JSON path, anything LaunchDarkly's
SDKs would choke on), writes the canonical fully populated JSON that every SDK parses, and builds
the compiled form the evaluator walks. `strict=True` (the write path) also refuses what would only
ever evaluate to MALFORMED_FLAG or never match.
"""

from __future__ import annotations

import re
from typing import Any

from relay.errors import ValidationError
from relay.evaluation.attrref import AttrRef, for_bucket_by, for_clause
from relay.evaluation.clauses import compile_bucket, compile_clause
from relay.evaluation.context import kind_error
from relay.evaluation.generated.codegen import compile_flag
from relay.evaluation.model import (
    BROKEN,
    ClauseFn,
    ContextTarget,
    Evaluation,
    Flag,
    FlagBody,
    OutcomeFn,
    Prerequisite,
    Reason,
    ReasonKind,
    malformed,
)
from relay.evaluation.operators import OPERATORS, value_problem
from relay.evaluation.reader import Reader, TrustedReader, check_depth, json_type

KEY_PATTERN = re.compile(r"\A[A-Za-z0-9._-]{1,256}\Z")  # with fullmatch: "$" would let "a\n" through
_OFF = Reason(ReasonKind.OFF)
_TARGET = Reason(ReasonKind.TARGET_MATCH)
_FALLTHROUGH = Reason(ReasonKind.FALLTHROUGH)


class Builder:
    """State shared while compiling one item: its variations, strictness and referenced segments."""

    def __init__(self, strict: bool, variations: tuple[Any, ...] = (), trusted: bool = False) -> None:
        self.strict = strict
        self.trusted = trusted  # input is canonical JSON relay wrote: keep it as the canonical form
        self.variations = variations
        self.segment_keys: set[str] = set()

    def result(self, index: int, reason: Reason, prereqs: tuple[str, ...]) -> Evaluation:
        if index < 0 or index >= len(self.variations):
            return malformed(prereqs)
        return Evaluation(self.variations[index], index, reason, prereqs)

    def check_index(self, r: Reader, name: str, index: int) -> None:
        if self.strict and not 0 <= index < len(self.variations):
            r.fail(name, f"variation index {index} is out of range (the flag has {len(self.variations)} variations)")

    def check_kind(self, r: Reader, name: str, kind: str | None) -> None:
        if self.strict and kind:
            problem = kind_error(kind)
            if problem:
                r.fail(name, problem)

    def check_ref(self, r: Reader, name: str, ref: AttrRef | None) -> None:
        if self.strict and ref is not None and ref.error is not None:
            r.fail(name, f'invalid attribute reference "{ref.raw}": {ref.error}')

    def clause(self, r: Reader) -> tuple[ClauseFn, dict[str, Any]]:
        context_kind = r.opt_str("contextKind")
        op = r.req_str("op")
        # The SDKs require `attribute`; segmentMatch ignores it, so the write path fills in "".
        lenient_attr = self.strict and op == "segmentMatch" and r.data.get("attribute") is None
        attribute = "" if lenient_attr else r.req_str("attribute")
        values = r.req_list("values")
        negate = r.opt_bool("negate")
        ref = for_clause(attribute, context_kind)
        self.check_kind(r, "contextKind", context_kind)
        if self.strict:
            if op not in OPERATORS:
                r.fail("op", f'unknown operator "{op}"')
            if op != "segmentMatch":
                self.check_ref(r, "attribute", ref)
            for i, value in enumerate(values):
                problem = value_problem(op, value)
                if problem:
                    r.fail(f"values[{i}]", f"{problem}, got {json_type(value)}")
        if op == "segmentMatch":
            self.segment_keys.update(v for v in values if isinstance(v, str))
        if self.trusted:
            return compile_clause(ref, context_kind, op, values, negate), r.data
        canonical: dict[str, Any] = {**r.data, "attribute": attribute, "op": op, "values": values, "negate": negate}
        if context_kind is None:
            canonical.pop("contextKind", None)
        return compile_clause(ref, context_kind, op, values, negate), canonical

    def clauses(self, r: Reader) -> tuple[tuple[ClauseFn, ...], list[dict[str, Any]]]:
        fns, canon = [], []
        for c in r.objects("clauses", required=True):
            fn, data = self.clause(c)
            fns.append(fn)
            canon.append(data)
        return tuple(fns), canon

    def outcome(
        self, r: Reader, reason: Reason, flag_key: str, salt: str, prereqs: tuple[str, ...]
    ) -> tuple[OutcomeFn, dict[str, Any]]:
        """A variation-or-rollout (a rule's or the fallthrough)."""
        data = r.data
        variation = r.opt_int("variation")
        rollout_data = r.opt_dict("rollout")
        if variation is not None:
            self.check_index(r, "variation", variation)
            fixed = self.result(variation, reason, prereqs)
            outcome = lambda ctx: fixed  # noqa: E731 - it carries the constant for codegen too
            outcome.fixed = fixed  # type: ignore[attr-defined]
            return outcome, {**data}
        if rollout_data is None:
            if self.strict:
                raise ValidationError(r.path, "needs a variation or a rollout")
            bad = malformed(prereqs)
            return (lambda ctx: bad), {**data}
        return self.rollout(r.child(rollout_data, "rollout"), reason, flag_key, salt, prereqs, data)

    def rollout(
        self, r: Reader, reason: Reason, flag_key: str, salt: str, prereqs: tuple[str, ...], parent: dict[str, Any]
    ) -> tuple[OutcomeFn, dict[str, Any]]:
        context_kind = r.opt_str("contextKind")
        bucket_by_raw = r.opt_str("bucketBy")
        experiment = r.opt_str("kind") == "experiment"
        seed = r.opt_int("seed")
        weighted = r.objects("variations", required=True)
        self.check_kind(r, "contextKind", context_kind)
        bucket_by = None if experiment else for_bucket_by(bucket_by_raw, context_kind)
        self.check_ref(r, "bucketBy", bucket_by)
        canonical = {**parent, "rollout": {**r.data, "variations": [w.data for w in weighted]}}
        if not weighted:
            if self.strict:
                r.fail("variations", "a rollout needs at least one weighted variation")
            bad = malformed(prereqs)
            return (lambda ctx: bad), canonical
        in_exp = Reason(reason.kind, reason.rule_index, reason.rule_id, in_experiment=True)
        thresholds: list[float] = []
        plain: list[Evaluation] = []
        tracked: list[Evaluation] = []
        total, cumulative = 0, 0.0
        for w in weighted:
            index, weight = w.req_int("variation"), w.req_int("weight")
            untracked = w.opt_bool("untracked")
            self.check_index(w, "variation", index)
            if self.strict and not 0 <= weight <= 100000:
                w.fail("weight", f"weight {weight} is outside 0..100000")
            total += weight
            cumulative += weight / 100000.0  # same float arithmetic as the SDK, bucket by bucket
            thresholds.append(cumulative)
            plain.append(self.result(index, reason, prereqs))
            tracked.append(self.result(index, reason if untracked else in_exp, prereqs))
        if self.strict and total > 100000:
            r.fail("variations", f"weights add up to {total}, more than 100000")
        bucket = compile_bucket(seed, flag_key, salt, context_kind, bucket_by)
        pairs = tuple(zip(thresholds, plain, tracked, strict=True))
        last_plain, last_tracked = plain[-1], tracked[-1]

        def roll(ctx: Any) -> Evaluation:
            b = bucket(ctx)
            exp = experiment and b >= 0  # a context without the rollout's kind is never in the experiment
            for threshold, p, t in pairs:
                if b < threshold:
                    return t if exp else p
            return last_tracked if exp else last_plain  # past the last bucket: the last one wins

        by_key = getattr(bucket, "by_key", None)
        if by_key is not None:  # for relay.evaluation.generated.codegen, which writes this roll out inline
            roll.inline = (*by_key, thresholds, plain, tracked, experiment)  # type: ignore[attr-defined]
        return roll, canonical


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


def parse_flag(data: Any, *, path: str = "flag", strict: bool = True, trusted: bool = False) -> Flag:
    """Validate and compile one flag, or raise ValidationError naming the JSON path.

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
    return _parse_flag(r, strict=strict, trusted=False)


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


def _parse_flag(r: Reader, *, strict: bool, trusted: bool) -> Flag:
    data = r.data
    key, version, deleted = parse_header(r, "flag", strict)
    if deleted:
        return Flag(key, version, True, {"key": key, "version": version, "deleted": True})
    variations = tuple(r.opt_list("variations"))
    b = Builder(strict, variations, trusted)
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
        if strict and prereq_keys[i] == key:
            p.fail("key", "a flag cannot be its own prerequisite")

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
    for t in r.objects("targets"):
        variation, values = t.req_int("variation"), t.str_list("values", required=True)
        t.opt_str("contextKind")
        b.check_index(t, "variation", variation)
        user_lists.append((variation, values))
        targets_canon.append({**t.data, "values": values})
    ctx_canon = []
    context_targets = []
    for t in r.objects("contextTargets"):
        kind = t.opt_str("contextKind") or "user"
        variation, values = t.req_int("variation"), t.str_list("values", required=True)
        b.check_index(t, "variation", variation)
        b.check_kind(t, "contextKind", kind)
        ctx_canon.append({**t.data, "values": values})
        if kind == "user":
            # A user entry points at the first `targets` list with the same variation.
            values = next((vals for var, vals in user_lists if var == variation), [])
        result = b.result(variation, _TARGET, prereqs)
        context_targets.append(ContextTarget(kind, frozenset(values), result))
    user_targets: dict[str, Evaluation] = {}
    if not context_targets:
        for variation, values in user_lists:
            result = b.result(variation, _TARGET, prereqs)
            for v in values:
                user_targets.setdefault(v, result)  # the first list naming a key wins
    return user_targets, tuple(context_targets), targets_canon, ctx_canon
