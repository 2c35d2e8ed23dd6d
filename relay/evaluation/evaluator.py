"""Flag evaluation with LaunchDarkly's exact semantics (Python SDK 9.18.4, ldclient/impl/evaluator.py).

Pure and synchronous: the evaluator gets compiled items and a read-only snapshot, never a store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from relay.evaluation.context import Context
from relay.evaluation.generated.fusion import FusedRun, Step, fuse
from relay.evaluation.model import (
    FLAG_NOT_FOUND,
    USER_NOT_SPECIFIED,
    Evaluation,
    Flag,
    FlagBody,
    MalformedFlag,
    Segment,
)
from relay.evaluation.prerequisites import aborted
from relay.evaluation.state import NO_STATE, EvalState

# Plans are cut into runs of this many flags, each fused into one function
# (relay.evaluation.generated.fusion) once the plan is warm: a change recompiles only the runs
# holding changed flags. Measured: 64 flags compile in 14-35 ms; 128 share more (0.9x the time per
# call) but take 36-55 ms; 16 take 4-14 ms but 1.2-1.3x the time per call (docs/benchmarks.md).
FUSE_CHUNK = 64
# All-flags calls a plan serves through the step loop before its runs are fused, one run per call
# after that: an audience asked once (or a ruleset changing constantly) never pays for compiling.
FUSE_AFTER = 16


class _Plan:
    """The live flags an audience sees, in runs: each run's steps and, once fused, its function."""

    __slots__ = ("runs", "unfused", "uses")

    def __init__(self, runs: list[tuple[list[Step], FusedRun | None]]) -> None:
        self.runs = runs
        self.unfused = sum(1 for _, fn in runs if fn is None)
        self.uses = 0


def _prerequisites_first(live: dict[str, Flag]) -> list[Flag]:
    """`live` in order, except that a flag's prerequisites come before it: then each prerequisite's
    result is already in `done` where a flag needs it (the order of results is not part of any
    protocol; the results themselves do not depend on it). Iterative: chains can be long."""
    order: list[Flag] = []
    seen: set[str] = set()
    for flag in live.values():
        if flag.key in seen:
            continue
        seen.add(flag.key)
        stack = [(flag, 0)]
        while stack:
            f, i = stack.pop()
            prereqs = f.body.prerequisites
            if i == len(prereqs):
                order.append(f)
                continue
            stack.append((f, i + 1))
            q = live.get(prereqs[i].key)
            if q is not None and q.key not in seen:
                seen.add(q.key)
                stack.append((q, 0))
    return order


def _run_key(steps: list[Step]) -> tuple[object, ...]:
    """What a fused run depends on: its flags' keys, compiled bodies (by identity; a changed flag
    has a new body) and bookkeeping. Not segments: segment clauses look segments up per call."""
    return tuple((key, id(body), needs_state, named) for key, body, needs_state, named in steps)


class Snapshot:
    """A read-only view of one environment's compiled flags and segments.

    Whoever changes the mappings in place calls `changed()` (the all-flags plans are cached)."""

    __slots__ = ("_fused", "_plans", "flags", "fuse_after", "segments")

    def __init__(
        self, flags: Mapping[str, Flag], segments: Mapping[str, Segment], fuse_after: int = FUSE_AFTER
    ) -> None:
        self.flags = flags
        self.segments = segments
        self.fuse_after = fuse_after
        self._plans: dict[Callable[[Flag], bool] | None, _Plan] = {}
        # Fused runs by _run_key, each with its steps (which keep the bodies, and so their ids, alive).
        self._fused: dict[tuple[object, ...], tuple[list[Step], FusedRun]] = {}

    def changed(self) -> None:
        self._plans.clear()

    def evaluate(self, flag_key: str, context: Context | None) -> Evaluation:
        if context is None:  # checked first, as the SDKs do
            return USER_NOT_SPECIFIED
        flag = self.flags.get(flag_key)
        if flag is None or flag.deleted:
            return FLAG_NOT_FOUND
        return evaluate(flag, context, self)

    def _plan(self, include: Callable[[Flag], bool] | None) -> _Plan:
        """The live flags `include` keeps, each compiled once: what every all-flags call walks."""
        live = _prerequisites_first(
            {f.key: f for f in self.flags.values() if not f.deleted and (include is None or include(f))}
        )
        named = {p.key for f in live for p in f.body.prerequisites}
        steps = [(f.key, f.body, f.body.needs_state, f.key in named) for f in live]
        runs: list[tuple[list[Step], FusedRun | None]] = []
        for i in range(0, len(steps), FUSE_CHUNK):
            run = steps[i : i + FUSE_CHUNK]
            fused = self._fused.get(_run_key(run))
            runs.append((run, None if fused is None else fused[1]))
        if len(self._plans) > 16:  # audiences are a few module functions; stay bounded regardless
            self._plans.clear()
        plan = self._plans[include] = _Plan(runs)
        return plan

    def _fuse_one(self, plan: _Plan) -> None:
        """Fuse the plan's first unfused run (one per call: no single request compiles them all)."""
        i = next((i for i, (_, fn) in enumerate(plan.runs) if fn is None), None)
        if i is None:
            return
        steps = plan.runs[i][0]
        live_runs = sum(len(p.runs) for p in self._plans.values())
        if len(self._fused) > 2 * live_runs + 16:  # runs of replaced flags: drop them all
            self._fused.clear()
        try:
            fn = fuse(steps)
        except Exception:  # (a Python compiler limit, say) the step loop serves this run, as before
            fn = partial(_run_steps, steps)
        self._fused[_run_key(steps)] = (steps, fn)
        plan.runs[i] = (steps, fn)
        plan.unfused -= 1

    def runs(self, include: Callable[[Flag], bool] | None = None) -> list[FusedRun | None]:
        """The current plan's runs for `include`: each one's fused function, or None (not yet)."""
        plan = self._plans.get(include)
        return [] if plan is None else [fn for _, fn in plan.runs]

    def evaluate_all(self, context: Context, include: Callable[[Flag], bool] | None = None) -> dict[str, Evaluation]:
        """Every live flag for one context (what a browser asks for), optionally filtered."""
        plan = self._plans.get(include)
        if plan is None:  # (an empty plan is cached too)
            plan = self._plan(include)
        if plan.unfused and self.fuse_after >= 0:  # (-1: never fuse)
            plan.uses += 1
            if plan.uses > self.fuse_after:
                self._fuse_one(plan)
        memo: dict[Segment, bool] = {}  # segment membership is the same for every flag
        done: dict[str, Evaluation] = {}  # prerequisites' results, the same for every flag too
        # One state, reset per flag, rather than one each.
        state = EvalState(self.flags, self.segments, "", memo, done)
        out: dict[str, Evaluation] = {}
        for steps, fn in plan.runs:
            if fn is not None:
                fn(context, state, out, done)
            else:
                _run_steps(steps, context, state, out, done)
        return out


def _run_steps(
    steps: list[Step], context: Context, state: EvalState, out: dict[str, Evaluation], done: dict[str, Evaluation]
) -> None:
    """Evaluate `steps` one flag function at a time: what a fused run writes out as one function."""
    for key, body, needs_state, named in steps:
        if named and (known := done.get(key)) is not None:  # reached already as a prerequisite
            out[key] = known
            continue
        if needs_state:
            state.original_key = key
            state.prereqs_seen = 0
            state.big_segments_status = None
            step = state
        else:
            step = NO_STATE
        try:
            result = body.run(context, step)
        except MalformedFlag:
            out[key] = aborted(body, step)  # not kept in `done`: a retry fails the same way
            continue
        if step.big_segments_status is not None:  # not kept either: the retry sets the status
            result = result.with_big_segments_status(step.big_segments_status)
        elif named:
            done[key] = result
        out[key] = result


def evaluate(flag: Flag, context: Context, snapshot: Snapshot, memo: dict[Segment, bool] | None = None) -> Evaluation:
    """Evaluate one flag for one valid context (`memo`: segment memberships already known)."""
    # Flags that reference no other item need no bookkeeping; their clauses never read the state.
    body = flag.body
    return _run(
        body, context, EvalState(snapshot.flags, snapshot.segments, flag.key, memo) if body.needs_state else NO_STATE
    )


def _run(body: FlagBody, context: Context, state: EvalState) -> Evaluation:
    try:
        result = body.run(context, state)
    except MalformedFlag:
        return aborted(body, state)
    if state.big_segments_status is not None:
        return result.with_big_segments_status(state.big_segments_status)
    return result
