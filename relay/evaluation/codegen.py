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

from typing import Any

from relay.evaluation.clauses import LONG_SCALE, attribute_verdict
from relay.evaluation.context import DEFAULT_KIND
from relay.evaluation.model import ClauseFn, ContextTarget, Evaluation, FlagRun, OutcomeFn, Prerequisite


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
    env: dict[str, Any] = {"_verdict": attribute_verdict, "_off": off_result}
    if not on:
        return _build(flag_key, ["    return _off"], env)
    lines: list[str] = []
    if prerequisites:
        # Imported here: the evaluator imports this module's callers.
        from relay.evaluation.evaluator import check_prerequisites

        env |= {"_prereqs": check_prerequisites, "_pq": prerequisites, "_key": flag_key}
        lines += ["    _f = _prereqs(_key, _pq, ctx, state)", "    if _f is not None:", "        return _f"]
    lines.append("    bk = ctx.by_kind")
    if user_targets:
        env["_ut"] = user_targets
        lines += [
            f"    if (_u := bk.get({DEFAULT_KIND!r})) is not None and (_h := _ut.get(_u.key)) is not None:",
            "        return _h",
        ]
    for i, target in enumerate(context_targets):
        env[f"_ct{i}"], env[f"_cr{i}"] = target.values, target.result
        lines += [
            f"    if (_s := bk.get({target.kind!r})) is not None and _s.key in _ct{i}:",
            f"        return _cr{i}",
        ]
    for i, (clauses, outcome) in enumerate(rules):
        terms = []
        for j, clause in enumerate(clauses):
            name = f"c{i}_{j}"
            spec = getattr(clause, "inline", None)
            if spec is not None:
                terms.append(_inline(spec, name, env))
            else:
                env[name] = clause
                terms.append(f"{name}(ctx, state)")
        lines.append(f"    if {' and '.join(terms) or 'True'}:")
        lines += _outcome(outcome, f"o{i}", env, "        ")
    lines += _outcome(fallthrough, "_ft", env, "    ")
    return _build(flag_key, lines, env)


def _outcome(outcome: OutcomeFn, name: str, env: dict[str, Any], indent: str) -> list[str]:
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
    env |= {f"{name}_h": prefix_hash, "_from_bytes": int.from_bytes, "_scale": LONG_SCALE}
    lines = [
        f"if (_s := bk.get({kind!r})) is None:",
        f"    return {name}_p0",
        f"_h = {name}_h.copy()",
        "_h.update(_s.key.encode())",
        '_b = (_from_bytes(_h.digest()[:8], "big") >> 4) / _scale',
    ]
    chosen = tracked if experiment else plain  # a bucketed context is in the experiment
    for j, (threshold, result) in enumerate(zip(thresholds, chosen, strict=True)):
        env[f"{name}_t{j}"], env[f"{name}_r{j}"] = threshold, result
        lines.append(f"if _b < {name}_t{j}:")
        lines.append(f"    return {name}_r{j}")
    env[f"{name}_p0"] = plain[0]
    lines.append(f"return {name}_r{len(chosen) - 1}")  # past the last bucket: the last one wins
    return [indent + line for line in lines]


def _build(flag_key: str, lines: list[str], env: dict[str, Any]) -> FlagRun:
    source = "\n".join(["def run(ctx, state):", *lines])
    exec(compile(source, f"<flag {flag_key!r}>", "exec"), env)
    return env["run"]  # type: ignore[no-any-return]
