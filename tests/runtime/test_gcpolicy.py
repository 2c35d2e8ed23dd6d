"""relay.runtime.gcpolicy: when it freezes, that it frees garbage rather than freezing it, and that it times the
collector's pauses; and that relay's compiled flags and segments need no cyclic collection."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from relay.evaluation import parse_flag, parse_segment
from relay.runtime.gcpolicy import GCPolicy, collector_off


@pytest.fixture
def thawed() -> Iterator[None]:
    """Each test leaves the collector as it found it (nothing frozen by the test lingers)."""
    yield
    gc.unfreeze()


def test_freezes_once_per_batch_of_opened_streams(thawed: None) -> None:
    policy = GCPolicy(batch=3)
    gc.unfreeze()
    for _ in range(2):
        policy.stream_opened()
    assert policy.freezes == 0 and gc.get_freeze_count() == 0
    policy.stream_opened()
    assert policy.freezes == 1 and gc.get_freeze_count() > 0
    for _ in range(3):
        policy.stream_opened()
    assert policy.freezes == 2


def test_frozen_objects_are_out_of_the_collectors_passes(thawed: None) -> None:
    policy = GCPolicy(batch=1)
    held = [[i] for i in range(1000)]  # tracked objects, like a stream's
    gc.unfreeze()
    policy.stream_opened()
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(o) in tracked for o in held)  # a full pass would not visit them


def test_garbage_made_before_a_freeze_is_freed_not_frozen(thawed: None) -> None:
    policy = GCPolicy(batch=1)

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    gone = weakref.ref(a)
    del a, b  # a cycle: only the cyclic collector frees it
    policy.stream_opened()
    assert gone() is None  # collected by the freeze's collection, not hidden by the freeze


def test_times_every_collection_by_generation() -> None:
    policy = GCPolicy()
    undo = policy.watch_pauses()
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        undo()
    assert policy.pauses[0][0] >= 1 and policy.pauses[2][0] >= 1
    count, total, longest = policy.pauses[2]
    assert total >= longest > 0
    gc.collect(2)
    assert policy.pauses[2][0] == count  # undone: no longer counting


def test_a_replaced_flag_body_is_freed_without_the_cyclic_gc() -> None:
    """Generated flag functions hold no reference cycle (their globals do not hold them), so a
    frozen-then-replaced flag does not leak."""
    flag = parse_flag(
        {"key": "f", "version": 1, "on": True, "variations": [False, True], "offVariation": 0,
         "fallthrough": {"variation": 1}, "rules": [{"clauses": [
             {"attribute": "plan", "op": "in", "values": ["pro"], "negate": False}], "variation": 0}]},
    )  # fmt: skip
    run = weakref.ref(flag.body.run)
    with collector_off():
        del flag
        assert run() is None


@pytest.mark.parametrize("evaluated", [False, True])
def test_a_replaced_segment_is_freed_without_the_cyclic_gc(evaluated: bool) -> None:
    """Before and after its membership check is generated on first use."""
    from relay.evaluation import Snapshot, parse_context

    segment = parse_segment({"key": "s", "version": 1, "included": ["a"], "rules": [{"clauses": [
        {"attribute": "plan", "op": "in", "values": ["pro"], "negate": False}], "weight": 50000}]})  # fmt: skip
    if evaluated:
        flag = parse_flag({"key": "f", "version": 1, "on": True, "variations": [False, True], "offVariation": 0,
                           "fallthrough": {"variation": 0}, "rules": [{"clauses": [
                               {"attribute": "", "op": "segmentMatch", "values": ["s"], "negate": False}],
                               "variation": 1}]})  # fmt: skip
        assert Snapshot({"f": flag}, {"s": segment}).evaluate("f", parse_context({"key": "a"})).value is True
    gone = weakref.ref(segment)
    with collector_off():
        del segment
        assert gone() is None
