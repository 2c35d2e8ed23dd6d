"""Fused all-flags runs (relay.evaluation.generated.fusion) against the step loop, on cases the differential
suite's random data rarely puts together: a shared segment verdict next to a Big Segments status
or an abort, prerequisites reused from earlier in the call, and runs reused across changes."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest

from relay.evaluation import Evaluation, Flag, Snapshot, evaluator, parse_context, parse_flag, parse_segment
from relay.evaluation.evaluator import FUSE_CHUNK
from relay.evaluation.model import ReasonKind

USER = parse_context({"kind": "user", "key": "u1", "plan": "pro"})


def _flag(key: str, rules: list[list[dict[str, Any]]] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "key": key, "version": 1, "on": True, "variations": [False, True], "offVariation": 0,
        "fallthrough": {"variation": 0}, "salt": key,
        "rules": [{"id": f"{key}-r{i}", "clauses": clauses, "variation": 1} for i, clauses in enumerate(rules)],
        **extra,
    }  # fmt: skip


def _segment_clause(key: str) -> dict[str, Any]:
    return {"attribute": "", "op": "segmentMatch", "values": [key], "negate": False}


BIG = {"key": "big", "version": 1, "unbounded": True, "rules": []}  # no membership store: NOT_CONFIGURED


def _snapshots(flags: list[dict[str, Any]], segments: list[dict[str, Any]] = ()) -> tuple[Snapshot, Snapshot]:  # type: ignore[assignment]
    parsed = {f["key"]: parse_flag(f, strict=False) for f in flags}
    segs = {s["key"]: parse_segment(s, strict=False) for s in segments}
    return Snapshot(parsed, segs, fuse_after=0), Snapshot(parsed, segs, fuse_after=sys.maxsize)


def _both(fused: Snapshot, steps: Snapshot, ctx: Any = USER) -> dict[str, Evaluation]:
    """The fused call's results, after checking they are the step loop's, in the same order."""
    got = fused.evaluate_all(ctx)
    assert fused.runs() and all(fn is not None for fn in fused.runs()), "not fused"
    assert steps.runs() == [None] * len(steps.runs())
    assert list(got.items()) == list(steps.evaluate_all(ctx).items())
    return got


def test_a_shared_segment_verdict_keeps_the_big_segments_status() -> None:
    # Both flags test the same (one compiled) segment clause; the second must not reuse the first's
    # verdict without the status that testing it records.
    fused, steps = _snapshots([_flag("a", [[_segment_clause("big")]]), _flag("b", [[_segment_clause("big")]])], [BIG])
    got = _both(fused, steps)
    assert got["a"].reason.big_segments_status == got["b"].reason.big_segments_status == "NOT_CONFIGURED"


def test_a_shared_segment_verdict_after_an_aborted_flag() -> None:
    # "a" tests the segment (recording a status), then aborts on a malformed reference: its status
    # is dropped with it, and "b" must test the segment again to record its own.
    bad = {"attribute": "/", "op": "in", "values": ["x"], "contextKind": "user", "negate": False}
    flags = [_flag("a", [[_segment_clause("big")], [bad]]), _flag("b", [[_segment_clause("big")]])]
    fused, steps = _snapshots(flags, [BIG])
    got = _both(fused, steps)
    assert got["a"].reason.kind is ReasonKind.ERROR
    assert got["b"].reason.big_segments_status == "NOT_CONFIGURED"


def test_shared_clauses_across_flags() -> None:
    pro = {"attribute": "plan", "op": "in", "values": ["pro"], "negate": False}
    free = {"attribute": "plan", "op": "in", "values": ["free"], "negate": False}
    flags = [_flag(f"f{i}", [[free], [pro]] if i % 2 else [[pro]]) for i in range(10)]
    fused, steps = _snapshots(flags)
    others = [parse_context({"kind": "user", "key": "u2", "plan": "free"}), parse_context({"kind": "org", "key": "o"})]
    for ctx in (USER, *others):
        _both(fused, steps, ctx)


def test_prerequisites_inline_and_called() -> None:
    prereq = lambda key, variation=1: {"prerequisites": [{"key": key, "variation": variation}]}  # noqa: E731
    flags = [
        _flag("on", fallthrough={"variation": 1}),
        {**_flag("off", fallthrough={"variation": 1}), "on": False, "offVariation": 1},
        _flag("needs-on", **prereq("on")),  # in `done` already: checked inline
        _flag("needs-on-0", **prereq("on", 0)),  # wrong variation
        _flag("needs-off", **prereq("off")),  # off fails whatever the off variation
        _flag("needs-later", **prereq("later")),  # not evaluated yet: the call
        _flag("needs-missing", **prereq("missing")),
        _flag("needs-itself", **prereq("needs-itself")),  # a cycle: MALFORMED_FLAG
        _flag("later", fallthrough={"variation": 1}),
        _flag("needs-two", prerequisites=[{"key": "on", "variation": 1}, {"key": "needs-on", "variation": 0}]),
    ]
    got = _both(*_snapshots(flags))
    assert [got[k].reason.kind for k in ("needs-on", "needs-on-0", "needs-off", "needs-later")] == [
        ReasonKind.FALLTHROUGH, ReasonKind.PREREQUISITE_FAILED, ReasonKind.PREREQUISITE_FAILED, ReasonKind.FALLTHROUGH
    ]  # fmt: skip
    assert got["needs-itself"].reason.kind is ReasonKind.ERROR
    assert got["needs-two"].prerequisites == ("on", "needs-on")


def test_a_prerequisite_is_evaluated_once_per_call() -> None:
    calls = []
    raw = [_flag("p"), _flag("x", prerequisites=[{"key": "p", "variation": 0}])]
    flags = {f["key"]: parse_flag(f, strict=False) for f in raw}
    p = flags["p"]
    inner = p.body.run

    def counted(ctx: Any, state: Any) -> Evaluation:
        calls.append(1)
        return inner(ctx, state)

    flags["p"] = Flag("p", 1, False, p.data, on=True, body=dataclasses.replace(p.body, run=counted))
    for fuse_after in (0, sys.maxsize):
        calls.clear()
        got = Snapshot(flags, {}, fuse_after=fuse_after).evaluate_all(USER)
        assert got["x"].reason.kind is ReasonKind.FALLTHROUGH
        assert len(calls) == 1, fuse_after


def test_runs_fuse_one_per_call_after_warm_up_and_survive_unrelated_changes() -> None:
    flags = {f"f{i}": parse_flag(_flag(f"f{i}", fallthrough={"variation": i % 2})) for i in range(2 * FUSE_CHUNK + 5)}
    snap = Snapshot(flags, {}, fuse_after=3)
    for _ in range(3):
        snap.evaluate_all(USER)
    assert snap.runs() == [None, None, None]  # still warming up: the step loop
    snap.evaluate_all(USER)
    first = snap.runs()
    assert first[0] is not None and first[1:] == [None, None]  # one run per call
    snap.evaluate_all(USER)
    snap.evaluate_all(USER)
    before = snap.runs()
    assert all(before)
    flags["f70"] = parse_flag({**_flag("f70"), "version": 2, "on": False})  # in the second run
    snap.changed()
    snap.evaluate_all(USER)
    after = snap.runs()
    assert after[0] is before[0] and after[2] is before[2]  # reused as they were
    assert after[1] is None  # the changed flag's run is compiled again, after the same warm-up
    for _ in range(4):
        got = snap.evaluate_all(USER)
    assert snap.runs()[1] is not None and snap.runs()[1] is not before[1]
    assert got["f70"].reason.kind is ReasonKind.OFF and got["f71"].variation == 1


def test_a_run_that_cannot_be_fused_is_served_by_the_step_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded during compilation")

    monkeypatch.setattr(evaluator, "fuse", broken)
    flags = [_flag("on", fallthrough={"variation": 1}), _flag("x", prerequisites=[{"key": "on", "variation": 1}])]
    fused, steps = _snapshots(flags)
    got = _both(fused, steps)  # (the fallback counts as fused: it is not tried again)
    assert got["x"].reason.kind is ReasonKind.FALLTHROUGH


def test_only_clauses_tested_at_more_than_one_site_are_shared() -> None:
    # A clause at one site stays inline, as in the flag's own function (as a call through a local
    # at every site, a run of distinct clauses measured slower than the step loop).
    pro = {"attribute": "plan", "op": "in", "values": ["pro"], "negate": False}
    flags = [_flag(f"f{i}", [[{**pro, "values": [f"plan-{i}"]}], [pro]]) for i in range(4)]
    fused, steps = _snapshots(flags)
    _both(fused, steps)
    (run,) = fused.runs()
    shared = [name for name in run.__code__.co_varnames if name.startswith("_c")]  # type: ignore[attr-defined]
    assert shared == ["_c0"]  # `pro`, at four sites; the four distinct clauses have no local
