"""relay.store.ruleset: changes apply in data-version order only (a duplicate is ignored, a gap
refused), a full load reports what changed, and what vanished from Redis becomes a tombstone."""

from __future__ import annotations

from typing import Any

import pytest

from relay.evaluation import Flag, Segment, parse_context, parse_flag, parse_segment
from relay.store.ruleset import Applied, Ruleset
from relay.wire.changes import Change

USER = parse_context({"kind": "user", "key": "ann"})


def flag(key: str, version: int, on: bool = True, **fields: Any) -> Flag:
    data = {"key": key, "version": version, "on": on, "variations": [False, True], "offVariation": 0,
            "fallthrough": {"variation": 1}, **fields}  # fmt: skip
    return parse_flag(data)


def segment(key: str, version: int, included: list[str] | None = None) -> Segment:
    return parse_segment({"key": key, "version": version, "included": included or []})


def loaded(version: int = 3) -> Ruleset:
    rs = Ruleset("prod")
    rs.replace({"a": flag("a", 1), "b": flag("b", 2)}, {"s": segment("s", 1)}, version)
    return rs


@pytest.mark.parametrize(
    ("version", "verdict"),
    [(1, Applied.DUPLICATE), (3, Applied.DUPLICATE), (4, Applied.APPLIED), (5, Applied.GAP), (40, Applied.GAP)],
    ids=["below", "same", "next", "one-skipped", "far-ahead"],
)
def test_check_says_what_a_version_would_be(version: int, verdict: Applied) -> None:
    assert loaded(3).check(version) is verdict


def test_the_next_change_is_applied_and_seen_by_evaluations() -> None:
    rs = loaded(3)
    snapshot = rs.snapshot
    assert snapshot.evaluate("a", USER).value is True
    verdict = rs.apply(Change("prod", 4, "flag", "a", flag("a", 2, on=False)))
    assert verdict is Applied.APPLIED and rs.version == 4
    assert rs.flags["a"].on is False and rs.flags["a"].version == 2
    assert rs.snapshot is snapshot and snapshot.evaluate("a", USER).value is False  # same snapshot, told


def test_a_segment_change_lands_among_the_segments() -> None:
    rs = loaded(3)
    assert rs.apply(Change("prod", 4, "segment", "s", segment("s", 2, ["ann"]))) is Applied.APPLIED
    assert rs.segments["s"].version == 2 and "s" not in rs.flags


@pytest.mark.parametrize(("version", "verdict"), [(3, Applied.DUPLICATE), (2, Applied.DUPLICATE), (5, Applied.GAP)])
def test_a_duplicate_or_a_gap_changes_nothing(version: int, verdict: Applied) -> None:
    rs = loaded(3)
    before = rs.flags["a"]
    assert rs.apply(Change("prod", version, "flag", "a", flag("a", 9, on=False))) is verdict
    assert rs.version == 3 and rs.flags["a"] is before and rs.snapshot.evaluate("a", USER).value is True


def test_the_first_load_makes_the_ruleset_ready_and_reports_every_item() -> None:
    rs = Ruleset("prod", fuse_after=7)
    assert not rs.ready and rs.loaded_at is None and rs.version == 0
    changes = rs.replace({"a": flag("a", 1)}, {"s": segment("s", 1)}, 2)
    assert rs.ready and rs.loaded_at is not None and rs.version == 2
    assert sorted((c.kind, c.key, c.version) for c in changes) == [("flag", "a", 2), ("segment", "s", 2)]
    assert all(c.env == "prod" and c.written_ms is None for c in changes)
    assert rs.snapshot.fuse_after == 7 and rs.snapshot.evaluate("a", USER).value is True


def test_a_reload_reports_only_what_changed() -> None:
    rs = loaded(3)
    first = rs.snapshot
    same_a, newer_b = flag("a", 1), flag("b", 3, on=False)
    changes = rs.replace({"a": same_a, "b": newer_b, "c": flag("c", 1)}, {"s": segment("s", 1)}, 6)
    assert [(c.key, c.item) for c in changes] == [("b", newer_b), ("c", rs.flags["c"])]
    assert all(c.version == 6 for c in changes) and rs.version == 6
    assert rs.snapshot is not first and rs.snapshot.evaluate("b", USER).value is False


def test_a_delete_seen_in_a_reload_is_a_change_even_at_the_same_version() -> None:
    rs = loaded(3)
    tomb = parse_flag({"key": "a", "version": 1, "deleted": True})
    changes = rs.replace({"a": tomb, "b": flag("b", 2)}, {"s": segment("s", 1)}, 4)
    assert [(c.key, c.item.deleted) for c in changes] == [("a", True)]


def test_items_gone_from_redis_become_tombstones_one_version_up() -> None:
    rs = loaded(3)
    changes = rs.replace({"a": flag("a", 1)}, {}, 5)
    gone = {(c.kind, c.key): c.item for c in changes}
    assert set(gone) == {("flag", "b"), ("segment", "s")}
    assert gone[("flag", "b")].deleted and gone[("flag", "b")].version == 3  # b was at 2
    assert gone[("segment", "s")].deleted and gone[("segment", "s")].version == 2
    assert rs.flags["b"] is gone[("flag", "b")] and rs.segments["s"] is gone[("segment", "s")]
    assert isinstance(rs.flags["b"], Flag) and isinstance(rs.segments["s"], Segment)
    assert rs.snapshot.evaluate("b", USER).reason.to_dict() == {"kind": "ERROR", "errorKind": "FLAG_NOT_FOUND"}


def test_a_tombstone_is_not_buried_twice() -> None:
    rs = loaded(3)
    rs.replace({"a": flag("a", 1)}, {"s": segment("s", 1)}, 4)  # b vanished: a tombstone at version 3
    assert rs.replace({"a": flag("a", 1)}, {"s": segment("s", 1)}, 5) == []  # the tombstone is not in Redis either
    assert "b" not in rs.flags


def test_a_change_may_carry_a_tombstone() -> None:
    rs = loaded(3)
    tomb = parse_flag({"key": "a", "version": 2, "deleted": True})
    assert rs.apply(Change("prod", 4, "flag", "a", tomb)) is Applied.APPLIED
    assert rs.flags["a"].deleted and rs.snapshot.evaluate("a", USER).reason.to_dict()["kind"] == "ERROR"
