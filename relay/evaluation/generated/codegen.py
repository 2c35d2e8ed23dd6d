"""Each flag as one generated Python function.

Evaluating a flag by walking its compiled parts (prerequisites, targets, a loop of clause closures,
the outcome) costs a Python call and attribute loads per step; for a typical flag that is most of
its evaluation time. So each flag becomes straight-line code: the off check, a call for the
prerequisites, target lookups, `if <clause> and <clause>: return <outcome>` per rule, where the
commonest clauses (a top-level attribute of one context kind) are written out inline and every
other clause is a call to its closure. Semantics are the closures' exactly: the generated
expressions repeat `clauses.attribute_verdict`, and the conformance and differential suites run
through this code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from relay.evaluation.clauses import attribute_verdict, bucket_bound
from relay.evaluation.context import DEFAULT_KIND
from relay.evaluation.model import (
    ClauseFn,
    ContextTarget,
    Evaluation,
    FlagRun,
    OutcomeFn,
    Prerequisite,
    SegmentCheck,
    SegmentRule,
)
from relay.evaluation.prerequisites import check_prerequisites


def _inline(spec: tuple[Any, ...], name: str, env: dict[str, Any]) -> str:
    """A clause as an expression over `bk` (the context's kinds), or its closure call."""
    shape, kind, attr, strings, test, negate = spec
    env[f"{name}_t"] = test
    if shape == "path":  # every step but the last must land on an object
        *parents, last = attr
        steps = [f"type(_v := _s.attrs.get({parents[0]!r})) is dict"]
        steps += [f"type(_v := _v.get({p!r})) is dict" for p in parents[1:]]
        get = f"(_s := bk.get({kind!r})) is not None and {' and '.join(steps)} and (_v := _v.get({last!r})) is not None"
        shape = "strings" if strings is not None else "test"
    else:
        get = f"(_s := bk.get({kind!r})) is not None and (_v := _s.attrs.get({attr!r})) is not None"
    if shape == "strings":
        env[f"{name}_s"] = strings
        hit = f"((_v in {name}_s) is not {negate})"
    else:
        hit = f"({name}_t(_v) is not {negate})"
    slow = f"_verdict(_v, {name}_t, {negate})"  # arrays, and other types for the string form
    guard = "type(_v) is str" if shape == "strings" else "type(_v) is not list"
    return f"({get} and ({hit} if {guard} else {slow}))"


@dataclass(frozen=True, slots=True)
class FlagParts:
    """What a flag's generated code is made from, kept on its function (`run.parts`) so that
    relay.evaluation.generated.fusion can write many flags into one function."""

    key: str
    on: bool
    off_result: Evaluation
    prerequisites: tuple[Prerequisite, ...]
    user_targets: dict[str, Evaluation]
    context_targets: tuple[ContextTarget, ...]
    rules: tuple[tuple[tuple[ClauseFn, ...], OutcomeFn], ...]
    fallthrough: OutcomeFn


def compile_flag(
    flag_key: str,
    on: bool,
    off_result: Evaluation,
    prerequisites: tuple[Prerequisite, ...],
    user_targets: dict[str, Evaluation],
    context_targets: tuple[ContextTarget, ...],
    rules: list[tuple[tuple[ClauseFn, ...], OutcomeFn]],
    fallthrough: OutcomeFn,
) -> FlagRun:
    """One function evaluating the whole flag, in LaunchDarkly's order: off, prerequisites,
    targets, rules, fallthrough. Straight-line code: no walk over the compiled parts, no call
    per step, and every context-independent outcome returned as its prebuilt object."""
    parts = FlagParts(flag_key, on, off_result, prerequisites, user_targets, context_targets, tuple(rules), fallthrough)
    env: dict[str, Any] = {"_verdict": attribute_verdict}
    lines = ["    bk = ctx.by_kind", *flag_lines(parts, "", env)] if on else flag_lines(parts, "", env)
    run = _build(f"<flag {flag_key!r}>", lines, env)
    run.parts = parts
    return run  # type: ignore[no-any-return]


class SharedClauses:
    """A fused run's clauses that more than one site tests, each given a local for its verdict
    (`_conjunction`); a clause tested at one site only is written as the flag's own code has it."""

    def __init__(self, clause_lists: Iterable[tuple[ClauseFn, ...]]) -> None:
        counts = Counter(clause for clauses in clause_lists for clause in clauses)
        self.repeated = {clause for clause, n in counts.items() if n > 1}
        self.locals: dict[ClauseFn, str] = {}


def flag_lines(parts: FlagParts, p: str, env: dict[str, Any], cse: SharedClauses | None = None) -> list[str]:
    """The statements of a flag's evaluation, each `return`ing its result, over `ctx`, `state` and
    `bk` (the context's kinds, bound once by the caller). Every name put in `env` starts with `p`.

    With `cse` (the run's SharedClauses), the code is for a fused run (relay.evaluation.generated.fusion),
    whose prologue (`FUSED_PROLOGUE`) binds the user context's key once, and which has `done` (results
    of flags evaluated already in this call): clauses are shared through locals (`_conjunction`),
    and prerequisites whose results are all in `done` are checked inline."""
    if not parts.on:
        env[f"{p}_off"] = parts.off_result
        return [f"    return {p}_off"]
    fused = cse is not None
    lines: list[str] = []
    if parts.prerequisites:
        lines += _prerequisite_lines(parts, p, env, fused)
    if parts.user_targets:
        env[f"{p}_ut"] = parts.user_targets
        if fused:  # (no user context: _ukey is None, in no target list)
            lines += [f"    if (_h := {p}_ut.get(_ukey)) is not None:", "        return _h"]
        else:
            lines += [
                f"    if (_u := bk.get({DEFAULT_KIND!r})) is not None and (_h := {p}_ut.get(_u.key)) is not None:",
                "        return _h",
            ]
    for i, target in enumerate(parts.context_targets):
        env[f"{p}_ct{i}"], env[f"{p}_cr{i}"] = target.values, target.result
        lines += [
            f"    if (_s := bk.get({target.kind!r})) is not None and _s.key in {p}_ct{i}:",
            f"        return {p}_cr{i}",
        ]
    for i, (clauses, outcome) in enumerate(parts.rules):
        lines.append(f"    if {_conjunction(clauses, f'{p}c{i}', env, cse)}:")
        lines += _outcome(outcome, f"{p}o{i}", env, "        ", fused)
    lines += _outcome(parts.fallthrough, f"{p}_ft", env, "    ", fused)
    return lines


# Bound once at the top of a fused run: the user context's key, and (on first use) its bytes.
FUSED_PROLOGUE = [
    f"    _ukey = None if (_u := bk.get({DEFAULT_KIND!r})) is None else _u.key",
    "    _ukb = None",
    "    _flags = state.flags",
]


def _prerequisite_lines(parts: FlagParts, p: str, env: dict[str, Any], fused: bool) -> list[str]:
    env |= {"_prereqs": check_prerequisites, f"{p}_pq": parts.prerequisites, f"{p}_key": parts.key}
    call = [f"    _f = _prereqs({p}_key, {p}_pq, ctx, state)", "    if _f is not None:", "        return _f"]
    if not fused:
        return call
    # Every prerequisite evaluated already in this call (a result in `done` means a live flag that
    # did not abort): check_prerequisites' verdict without the call. Otherwise the call (which also
    # reports a flag naming itself: never in `done` before its own evaluation).
    known = " and ".join(f"(_p{j} := done.get({q.key!r})) is not None" for j, q in enumerate(parts.prerequisites))
    lines = [f"    if {known}:", f"        state.prereqs_seen = {len(parts.prerequisites)}"]
    for j, q in enumerate(parts.prerequisites):
        env[f"{p}_pf{j}"] = q.failed
        # An off prerequisite fails whatever its off variation is.
        test = f"not _flags[{q.key!r}].on or _p{j}.variation != {q.variation!r}"
        lines += [f"        if {test}:", f"            return {p}_pf{j}"]
    return [*lines, "    else:", *("    " + line for line in call)]


def _clause_expr(clause: ClauseFn, name: str, env: dict[str, Any]) -> str:
    spec = getattr(clause, "inline", None)
    if spec is not None:
        return _inline(spec, name, env)
    env[name] = clause
    return f"{name}(ctx, state)"


def _conjunction(
    clauses: tuple[ClauseFn, ...], prefix: str, env: dict[str, Any], cse: SharedClauses | None = None
) -> str:
    """A rule's clauses as one `and` expression, inline where they can be.

    With `cse`, a clause tested at more than one site is evaluated at most once per call of the
    generated function: its verdict is kept in a local (None: not yet). Identical clauses are one
    compiled object (clauses.compile_clause), so this shares them across flags. A verdict
    depends on the context alone; the one thing a clause can also do is record a Big Segments
    status (a segment match), after which the fused run (relay.evaluation.generated.fusion)
    forgets shared segment verdicts.
    (A clause that raises MalformedFlag leaves its local unset, and raises again where reused.)"""
    terms = []
    for j, clause in enumerate(clauses):
        if cse is None or clause not in cse.repeated:
            terms.append(_clause_expr(clause, f"{prefix}_{j}", env))
            continue
        local = cse.locals.get(clause)
        if local is None:
            local = cse.locals[clause] = f"_c{len(cse.locals)}"
            env[f"{local}_f"] = clause
        # The first test calls the clause's function: written out at every site, the inline form
        # made the generated code ~4x larger and as much slower to compile, for no measurable gain.
        terms.append(f"({local} if {local} is not None else ({local} := {local}_f(ctx, state)))")
    return " and ".join(terms) or "True"


def is_segment_clause(clause: ClauseFn) -> bool:
    return getattr(clause, "segment_keys", None) is not None


def _bucket_lines(name: str, key_bytes: str = "_s.key.encode()") -> list[str]:
    """`_d`, the SHA-1 digest that decides the bucket by key (`key_bytes`: by default that of `_s`,
    the context of the rollout's kind): clauses.compile_bucket's hash step for step, continuing
    the hash of the constant prefix in `{name}_h`. It is compared with digest bounds
    (clauses.bucket_bound) rather than turned into the bucket number."""
    return [f"_h = {name}_h.copy()", f"_h.update({key_bytes})", "_d = _h.digest()"]


def compile_segment(
    segment_key: str,
    included: frozenset[str],
    included_contexts: tuple[tuple[str, frozenset[str]], ...],
    excluded: frozenset[str],
    excluded_contexts: tuple[tuple[str, frozenset[str]], ...],
    rules: tuple[SegmentRule, ...],
) -> SegmentCheck:
    """Membership of a segment that names no other segment, as one function, in LaunchDarkly's
    order: included keys, included contexts, excluded keys, excluded contexts, the rules (a
    weighted rule also needs the context's bucket under its weight). What relay.evaluation.state's
    EvalState._lists_or_rules and _any_rule_matches do, without a call per step."""
    env: dict[str, Any] = {"_verdict": attribute_verdict}
    lines = ["    bk = ctx.by_kind"]
    lists = [(DEFAULT_KIND, included, True), *((kind, keys, True) for kind, keys in included_contexts)]
    lists += [(DEFAULT_KIND, excluded, False), *((kind, keys, False) for kind, keys in excluded_contexts)]
    for i, (kind, keys, verdict) in enumerate(lists):
        if keys:  # (an empty list matches nobody)
            env[f"_k{i}"] = keys
            lines += [f"    if (_s := bk.get({kind!r})) is not None and _s.key in _k{i}:", f"        return {verdict}"]
    for i, rule in enumerate(rules):
        lines.append(f"    if {_conjunction(rule.clauses, f'c{i}', env)}:")
        if rule.weight is None:
            lines.append("        return True")
            continue
        weight = rule.weight / 100000.0
        by_key = getattr(rule.bucket, "by_key", None)
        if by_key is None:  # bucketed by an attribute: the closure
            env[f"r{i}_b"], env[f"r{i}_w"] = rule.bucket, weight
            lines += [f"        if r{i}_b(ctx) < r{i}_w:", "            return True"]
        else:  # by key, written out
            kind, env[f"r{i}_h"] = by_key
            env[f"r{i}_w"] = bucket_bound(weight)
            bucketed = [*_bucket_lines(f"r{i}"), f"if _d < r{i}_w:", "    return True"]
            if weight > -1.0:  # a context without the kind is bucket -1: under any weight from 0
                lines += [f"        if (_s := bk.get({kind!r})) is None:", "            return True"]
                lines += [f"        {line}" for line in bucketed]
            else:
                lines += [f"        if (_s := bk.get({kind!r})) is not None:"]
                lines += [f"            {line}" for line in bucketed]
    lines.append("    return False")
    return _build(f"<segment {segment_key!r}>", lines, env)  # type: ignore[no-any-return]


def _outcome(outcome: OutcomeFn, name: str, env: dict[str, Any], indent: str, fused: bool = False) -> list[str]:
    """Statements returning a rule's or the fallthrough's result."""
    fixed = getattr(outcome, "fixed", None)
    if fixed is not None:  # a fixed variation: its prebuilt result
        env[name] = fixed
        return [f"{indent}return {name}"]
    spec = getattr(outcome, "inline", None)
    if spec is None:
        env[name] = outcome
        return [f"{indent}return {name}(ctx)"]
    # A rollout bucketing by key, written out: compile.rollout's `roll` and clauses.compile_bucket
    # step for step (a context without the kind is bucket -1: the first bucket, never in an experiment).
    kind, prefix_hash, thresholds, plain, tracked, experiment = spec
    env[f"{name}_h"] = prefix_hash
    if fused and kind == DEFAULT_KIND:  # the prologue's user key; its bytes made once per call
        key_bytes = "_ukb if _ukb is not None else (_ukb := _ukey.encode())"
        lines = ["if _ukey is None:", f"    return {name}_p0", *_bucket_lines(name, key_bytes)]
    else:
        lines = [f"if (_s := bk.get({kind!r})) is None:", f"    return {name}_p0", *_bucket_lines(name)]
    chosen = tracked if experiment else plain  # a bucketed context is in the experiment
    for j, (threshold, result) in enumerate(zip(thresholds, chosen, strict=True)):
        env[f"{name}_t{j}"], env[f"{name}_r{j}"] = bucket_bound(threshold), result
        lines.append(f"if _d < {name}_t{j}:")
        lines.append(f"    return {name}_r{j}")
    env[f"{name}_p0"] = plain[0]
    lines.append(f"return {name}_r{len(chosen) - 1}")  # past the last bucket: the last one wins
    return [indent + line for line in lines]


def _build(filename: str, lines: list[str], env: dict[str, Any]) -> Any:
    source = "\n".join(["def run(ctx, state):", *lines])
    exec(compile(source, filename, "exec"), env)
    # Out of its own globals: otherwise function and globals are a reference cycle, which only the
    # cyclic GC frees (and never, once gc.freeze() has seen it) when the flag is replaced.
    return env.pop("run")
