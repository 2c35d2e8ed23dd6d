"""Each flag's rules as one generated Python function.

Evaluating rules through a loop of compiled clause closures costs a Python call per clause plus the
loop's own machinery; for a flag with a few rules that is most of its evaluation time. So the rule
chain of each flag becomes straight-line code: `if <clause> and <clause>: return <outcome>(ctx)`,
where the commonest clauses (a top-level attribute of one context kind) are written out inline and
every other clause is a call to its closure. Semantics are the closures' exactly: the generated
expressions repeat `clauses.attribute_verdict`, and the conformance and differential suites run
through this code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from relay.evaluation.clauses import attribute_verdict
from relay.evaluation.model import ClauseFn, Evaluation, OutcomeFn

if TYPE_CHECKING:
    from relay.evaluation.context import Context
    from relay.evaluation.evaluator import EvalState

RuleChain = Callable[["Context", "EvalState"], Evaluation | None]


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


def compile_rules(flag_key: str, rules: list[tuple[tuple[ClauseFn, ...], OutcomeFn]]) -> RuleChain | None:
    """One function running a flag's rules in order: the first match's outcome, or None."""
    if not rules:
        return None
    env: dict[str, Any] = {"_verdict": attribute_verdict}
    lines = ["def rules(ctx, state):", "    bk = ctx.by_kind"]
    for i, (clauses, outcome) in enumerate(rules):
        env[f"o{i}"] = outcome
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
        if hasattr(outcome, "fixed"):  # a fixed variation: return its prebuilt result
            env[f"r{i}"] = outcome.fixed
            lines.append(f"        return r{i}")
        else:
            lines.append(f"        return o{i}(ctx)")
    lines.append("    return None")
    code = compile("\n".join(lines), f"<rules of flag {flag_key!r}>", "exec")
    exec(code, env)
    return env["rules"]  # type: ignore[no-any-return]
