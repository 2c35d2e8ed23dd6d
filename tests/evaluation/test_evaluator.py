"""Reasons, errors and targeting, each checked against a fixed expectation and LaunchDarkly's SDK."""

from __future__ import annotations

from typing import Any

import pytest

from tests.oracle import both, relay_eval, sdk_eval

USER = {"kind": "user", "key": "user-key"}
BOOL = [False, True]


def flag(**fields: Any) -> dict[str, Any]:
    return {"on": True, "variations": BOOL, "offVariation": 0, "fallthrough": {"variation": 1}, **fields}


def rule(clauses: list[dict[str, Any]], variation: int = 1, rule_id: str = "r0", **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "variation": variation, "clauses": clauses, **extra}


def clause(attribute: str, op: str, values: list[Any], **extra: Any) -> dict[str, Any]:
    return {"attribute": attribute, "op": op, "values": values, "negate": False, **extra}


def test_off_returns_off_variation() -> None:
    assert both({"f": flag(on=False)}, {}, "f", USER) == (False, 0, {"kind": "OFF"})


def test_off_without_off_variation_is_null_not_an_error() -> None:
    assert both({"f": flag(on=False, offVariation=None)}, {}, "f", USER) == (None, None, {"kind": "OFF"})


def test_off_variation_out_of_range_is_malformed() -> None:
    expected = (None, None, {"kind": "ERROR", "errorKind": "MALFORMED_FLAG"})
    assert both({"f": flag(on=False, offVariation=7)}, {}, "f", USER) == expected


def test_fallthrough_without_variation_or_rollout_is_malformed() -> None:
    assert both({"f": flag(fallthrough={})}, {}, "f", USER)[2]["errorKind"] == "MALFORMED_FLAG"


def test_unknown_flag_and_missing_context() -> None:
    assert relay_eval({"f": flag()}, {}, "nope", USER)[2] == {"kind": "ERROR", "errorKind": "FLAG_NOT_FOUND"}
    assert relay_eval({"f": flag()}, {}, "f", {"kind": "user", "key": ""})[2]["errorKind"] == "USER_NOT_SPECIFIED"


class TestPrerequisites:
    def test_met(self) -> None:
        flags = {"f": flag(prerequisites=[{"key": "p", "variation": 1}]), "p": flag()}
        assert both(flags, {}, "f", USER) == (True, 1, {"kind": "FALLTHROUGH"})

    @pytest.mark.parametrize(
        "prereq",
        [flag(on=False, offVariation=1), flag(fallthrough={"variation": 0}), flag(fallthrough={})],
        ids=["off-even-with-right-off-variation", "wrong-variation", "malformed-prerequisite"],
    )
    def test_failed(self, prereq: dict[str, Any]) -> None:
        flags = {"f": flag(prerequisites=[{"key": "p", "variation": 1}]), "p": prereq}
        assert both(flags, {}, "f", USER) == (False, 0, {"kind": "PREREQUISITE_FAILED", "prerequisiteKey": "p"})

    def test_missing(self) -> None:
        flags = {"f": flag(prerequisites=[{"key": "gone", "variation": 1}])}
        assert both(flags, {}, "f", USER)[2] == {"kind": "PREREQUISITE_FAILED", "prerequisiteKey": "gone"}

    def test_first_failure_wins(self) -> None:
        prereqs = [{"key": "a", "variation": 1}, {"key": "b", "variation": 1}, {"key": "c", "variation": 1}]
        flags = {"f": flag(prerequisites=prereqs), "a": flag(), "b": flag(on=False), "c": flag(on=False)}
        assert both(flags, {}, "f", USER)[2]["prerequisiteKey"] == "b"

    @pytest.mark.parametrize("depth", [1, 2, 5])
    def test_cycles_are_malformed_not_a_crash(self, depth: int) -> None:
        keys = [f"f{i}" for i in range(depth + 1)]
        flags = {
            k: flag(prerequisites=[{"key": keys[(i + 1) % len(keys)], "variation": 1}]) for i, k in enumerate(keys)
        }
        assert both(flags, {}, "f0", USER)[2] == {"kind": "ERROR", "errorKind": "MALFORMED_FLAG"}

    def test_diamond_is_not_a_cycle(self) -> None:
        flags = {
            "f": flag(prerequisites=[{"key": "a", "variation": 1}, {"key": "b", "variation": 1}]),
            "a": flag(prerequisites=[{"key": "c", "variation": 1}]),
            "b": flag(prerequisites=[{"key": "c", "variation": 1}]),
            "c": flag(),
        }
        assert both(flags, {}, "f", USER)[2] == {"kind": "FALLTHROUGH"}

    def test_prerequisite_keys_are_reported(self) -> None:
        from relay.evaluation import Snapshot, parse_context, parse_flag

        flags = {"f": flag(prerequisites=[{"key": "a", "variation": 1}, {"key": "b", "variation": 1}]), "a": flag()}
        compiled = {k: parse_flag({"key": k, "version": 1, **v}, strict=False) for k, v in flags.items()}
        result = Snapshot(compiled, {}).evaluate("f", parse_context(USER))
        assert result.prerequisites == ("a", "b")

    def test_all_flags_reuse_prerequisite_results_only_where_they_would_repeat(self) -> None:
        """evaluate_all evaluates a prerequisite once per context and reuses the result; each flag
        must still come out as the SDK evaluates it alone: failed, cyclic, off and Big Segment
        prerequisites included, and prerequisites listed before and after the flags naming them."""
        from relay.evaluation import Snapshot, parse_context, parse_flag, parse_segment

        bad_clause = {"attribute": "", "op": "in", "values": ["x"], "negate": False}
        on_p = [{"key": "ok", "variation": 1}]
        flags = {
            "ok": flag(),
            "broken": flag(rules=[rule([bad_clause])]),  # evaluating it raises: MALFORMED_FLAG
            "off": flag(on=False, offVariation=1),
            "big": seg_rule_flag("bigseg"),
            "cyc-a": flag(prerequisites=[{"key": "cyc-b", "variation": 1}]),
            "cyc-b": flag(prerequisites=[{"key": "cyc-a", "variation": 1}]),
            "needs-ok": flag(prerequisites=on_p),
            "needs-broken": flag(prerequisites=[*on_p, {"key": "broken", "variation": 1}]),
            "needs-off": flag(prerequisites=[{"key": "off", "variation": 1}]),
            "needs-big": flag(prerequisites=[{"key": "big", "variation": 1}]),
            "needs-cyc": flag(prerequisites=[{"key": "cyc-a", "variation": 1}]),
            "needs-later": flag(prerequisites=[{"key": "later", "variation": 0}]),
            "later": flag(prerequisites=on_p, fallthrough={"variation": 0}),
            "chain": flag(prerequisites=[{"key": "needs-ok", "variation": 1}]),
        }
        segs = {"bigseg": {"unbounded": True, "generation": 1, "rules": [{"clauses": []}]}}
        compiled = {k: parse_flag({"key": k, "version": 1, **v}, strict=False) for k, v in flags.items()}
        segments = {k: parse_segment({"key": k, "version": 1, **v}, strict=False) for k, v in segs.items()}
        snapshot = Snapshot(compiled, segments)
        everything = snapshot.evaluate_all(parse_context(USER))
        for key in flags:
            ours = everything[key]
            assert (ours.value, ours.variation, ours.reason.to_dict()) == sdk_eval(flags, segs, key, USER), key
            assert ours == snapshot.evaluate(key, parse_context(USER)), key  # prerequisites listed too
        assert everything["needs-broken"].prerequisites == ("ok", "broken")

    def test_all_flags_evaluate_a_nested_prerequisite_once(self) -> None:
        """A prerequisite first reached through another flag (here listed before it) is kept too."""
        import dataclasses

        from relay.evaluation import Snapshot, parse_context, parse_flag

        flags = {
            "top": flag(prerequisites=[{"key": "mid", "variation": 1}]),
            "mid": flag(prerequisites=[{"key": "leaf", "variation": 1}]),
            "also": flag(prerequisites=[{"key": "leaf", "variation": 1}]),
            "leaf": flag(),
        }
        compiled = {k: parse_flag({"key": k, "version": 1, **v}, strict=False) for k, v in flags.items()}
        runs = []
        leaf = compiled["leaf"]
        real = leaf.body.run

        def counted(ctx: Any, state: Any) -> Any:
            runs.append(1)
            return real(ctx, state)

        leaf._body = dataclasses.replace(leaf.body, run=counted)
        everything = Snapshot(compiled, {}).evaluate_all(parse_context(USER))
        assert len(runs) == 1
        for key in flags:
            ours = everything[key]
            assert (ours.value, ours.variation, ours.reason.to_dict()) == sdk_eval(flags, {}, key, USER), key


class TestTargets:
    def test_user_targets(self) -> None:
        f = flag(targets=[{"variation": 0, "values": ["x", "user-key"]}])
        assert both({"f": f}, {}, "f", USER) == (False, 0, {"kind": "TARGET_MATCH"})

    def test_context_targets_interleave_user_targets_by_variation(self) -> None:
        f = flag(
            targets=[{"variation": 0, "values": ["user-key"]}],
            contextTargets=[
                {"contextKind": "org", "variation": 1, "values": ["acme"]},
                {"contextKind": "user", "variation": 0, "values": []},
            ],
        )
        multi = {"kind": "multi", "user": {"key": "user-key"}, "org": {"key": "acme"}}
        assert both({"f": f}, {}, "f", multi) == (True, 1, {"kind": "TARGET_MATCH"})
        assert both({"f": f}, {}, "f", USER) == (False, 0, {"kind": "TARGET_MATCH"})

    def test_target_variation_out_of_range(self) -> None:
        f = flag(targets=[{"variation": 9, "values": ["user-key"]}])
        assert both({"f": f}, {}, "f", USER)[2]["errorKind"] == "MALFORMED_FLAG"


class TestRules:
    def test_first_matching_rule_wins_with_index_and_id(self) -> None:
        f = flag(
            rules=[
                rule([clause("email", "endsWith", ["@x.org"])], rule_id="miss"),
                rule([clause("email", "endsWith", ["@example.com"])], variation=0, rule_id="hit"),
                rule([], rule_id="empty-rule-matches-everyone"),
            ]
        )
        ctx = {**USER, "email": "ann@example.com"}
        assert both({"f": f}, {}, "f", ctx) == (False, 0, {"kind": "RULE_MATCH", "ruleIndex": 1, "ruleId": "hit"})

    def test_all_clauses_must_match(self) -> None:
        f = flag(fallthrough={"variation": 0}, rules=[rule([clause("a", "in", [1]), clause("b", "in", [2])])])
        assert both({"f": f}, {}, "f", {**USER, "a": 1, "b": 3})[2] == {"kind": "FALLTHROUGH"}
        assert both({"f": f}, {}, "f", {**USER, "a": 1, "b": 2})[2]["kind"] == "RULE_MATCH"

    def test_rule_without_id(self) -> None:
        f = flag(rules=[{"variation": 0, "clauses": []}])
        assert both({"f": f}, {}, "f", USER)[2] == {"kind": "RULE_MATCH", "ruleIndex": 0, "ruleId": None}

    def test_clause_with_empty_attribute_is_malformed(self) -> None:
        f = flag(rules=[rule([clause("", "in", ["x"])]), rule([])])
        assert both({"f": f}, {}, "f", USER)[2]["errorKind"] == "MALFORMED_FLAG"

    @pytest.mark.parametrize("ref", ["//a", "/a~2", "/a~", "/"])
    def test_invalid_reference_is_malformed_only_for_contexts_of_that_kind(self, ref: str) -> None:
        f = flag(rules=[rule([clause(ref, "in", ["x"], contextKind="user")])])
        assert both({"f": f}, {}, "f", USER)[2]["errorKind"] == "MALFORMED_FLAG"
        assert both({"f": f}, {}, "f", {"kind": "org", "key": "o"})[2] == {"kind": "FALLTHROUGH"}

    @pytest.mark.parametrize(
        ("attribute", "kind", "ctx", "matches"),
        [
            ("/address/city", "user", {"address": {"city": "Oslo"}}, True),
            ("/a~1b/c~0d", "user", {"a/b": {"c~d": "Oslo"}}, True),
            ("/address/0", "user", {"address": ["Oslo"]}, False),
            ("/address/2", "user", {"address": {"2": "Oslo"}}, True),
            ("/address/city", None, {"/address/city": "Oslo"}, True),  # literal name without contextKind
            ("/address/city", None, {"address": {"city": "Oslo"}}, False),
            ("name", None, {"name": "Oslo"}, True),
            ("key", None, {}, False),
            ("_meta", "user", {"_meta": {"privateAttributes": []}}, False),
        ],
    )
    def test_attribute_references(self, attribute: str, kind: str | None, ctx: dict[str, Any], matches: bool) -> None:
        extra = {"contextKind": kind} if kind else {}
        f = flag(fallthrough={"variation": 0}, rules=[rule([clause(attribute, "in", ["Oslo"], **extra)])])
        assert (both({"f": f}, {}, "f", {**USER, **ctx})[2]["kind"] == "RULE_MATCH") is matches

    @pytest.mark.parametrize(
        ("values", "ctx", "matches"),
        [
            (["org"], {"kind": "multi", "user": {"key": "u"}, "org": {"key": "o"}}, True),
            (["user"], {"kind": "org", "key": "o"}, False),
            (["user"], {"key": "old-format-user"}, True),
        ],
    )
    def test_kind_attribute_sees_every_kind(self, values: list[str], ctx: dict[str, Any], matches: bool) -> None:
        f = flag(fallthrough={"variation": 0}, rules=[rule([clause("kind", "in", values)])])
        if "kind" in ctx:
            assert (both({"f": f}, {}, "f", ctx)[2]["kind"] == "RULE_MATCH") is matches
        else:
            assert (relay_eval({"f": f}, {}, "f", ctx)[2]["kind"] == "RULE_MATCH") is matches

    def test_clause_context_kind_picks_the_individual_context(self) -> None:
        f = flag(fallthrough={"variation": 0}, rules=[rule([clause("plan", "in", ["gold"], contextKind="org")])])
        multi = {"kind": "multi", "user": {"key": "u", "plan": "gold"}, "org": {"key": "o", "plan": "free"}}
        assert both({"f": f}, {}, "f", multi)[2] == {"kind": "FALLTHROUGH"}
        multi["org"]["plan"] = "gold"
        assert both({"f": f}, {}, "f", multi)[2]["kind"] == "RULE_MATCH"


def rollout(weights: list[int], **extra: Any) -> dict[str, Any]:
    return {"rollout": {"variations": [{"variation": i, "weight": w} for i, w in enumerate(weights)], **extra}}


class TestRollouts:
    # PROTOCOL.md §8: hashKey.saltyA.userKeyA buckets at 0.42157587
    def test_bucket_boundaries(self) -> None:
        f = {"on": True, "variations": ["a", "b"], "salt": "saltyA", "fallthrough": rollout([42157, 57843])}
        assert both({"hashKey": f}, {}, "hashKey", {"kind": "user", "key": "userKeyA"})[0] == "b"
        f["fallthrough"] = rollout([42158, 57842])
        assert both({"hashKey": f}, {}, "hashKey", {"kind": "user", "key": "userKeyA"})[0] == "a"

    def test_seed_replaces_key_and_salt(self) -> None:
        # 61.userKeyA buckets at 0.09801207
        f = {"on": True, "variations": ["a", "b"], "salt": "saltyA", "fallthrough": rollout([9802, 90198], seed=61)}
        assert both({"hashKey": f}, {}, "hashKey", {"kind": "user", "key": "userKeyA"})[0] == "a"

    def test_last_bucket_catches_the_overflow(self) -> None:
        f = {"on": True, "variations": ["a", "b", "c"], "fallthrough": rollout([1, 1, 1])}
        assert both({"f": f}, {}, "f", USER)[0] == "c"

    @pytest.mark.parametrize("value", [33333, "33333", 33333.0, True, None, [1]])
    def test_bucket_by_integer_and_unbucketable_values(self, value: Any) -> None:
        f = {
            "on": True,
            "variations": ["a", "b"],
            "salt": "saltyA",
            "fallthrough": rollout([54771, 45229], bucketBy="n"),
        }
        assert both({"hashKey": f}, {}, "hashKey", {**USER, "n": value}) is not None

    def test_experiment_in_and_untracked(self) -> None:
        exp = rollout([50000, 50000], kind="experiment", seed=1)
        f = {"on": True, "variations": ["a", "b"], "fallthrough": exp}
        results = {both({"f": f}, {}, "f", {"kind": "user", "key": f"u{i}"})[2].get("inExperiment") for i in range(20)}
        assert results == {True}
        exp["rollout"]["variations"][0]["untracked"] = True
        exp["rollout"]["variations"][1]["untracked"] = True
        assert both({"f": f}, {}, "f", USER)[2] == {"kind": "FALLTHROUGH"}

    def test_experiment_ignores_bucket_by_and_missing_kind_is_not_in_experiment(self) -> None:
        exp = rollout([50000, 50000], kind="experiment", bucketBy="//invalid", contextKind="org")
        f = {
            "on": True,
            "variations": ["a", "b"],
            "rules": [{"id": "x", "clauses": [], **exp}],
            "fallthrough": {"variation": 0},
        }
        assert both({"f": f}, {}, "f", {"kind": "org", "key": "o"})[2]["inExperiment"] is True
        assert both({"f": f}, {}, "f", USER)[2] == {"kind": "RULE_MATCH", "ruleIndex": 0, "ruleId": "x"}

    def test_empty_rollout_is_malformed(self) -> None:
        f = {"on": True, "variations": ["a"], "fallthrough": {"rollout": {"variations": []}}}
        assert both({"f": f}, {}, "f", USER)[2]["errorKind"] == "MALFORMED_FLAG"


def seg_rule_flag(*segment_keys: str, negate: bool = False) -> dict[str, Any]:
    c = clause("", "segmentMatch", list(segment_keys), negate=negate)
    return flag(fallthrough={"variation": 0}, rules=[rule([c])])


class TestSegments:
    def test_included_excluded_and_per_kind_lists(self) -> None:
        segs = {
            "s": {
                "included": ["in-user"],
                "excluded": ["user-key"],
                "includedContexts": [{"contextKind": "org", "values": ["acme"]}],
                "rules": [{"clauses": []}],
            }
        }
        flags = {"f": seg_rule_flag("s")}
        assert both(flags, segs, "f", {"kind": "user", "key": "in-user"})[2]["kind"] == "RULE_MATCH"
        assert both(flags, segs, "f", USER)[2]["kind"] == "FALLTHROUGH"  # excluded beats the rule
        assert both(flags, segs, "f", {"kind": "org", "key": "acme"})[2]["kind"] == "RULE_MATCH"
        assert both(flags, segs, "f", {"kind": "org", "key": "in-user"})[2]["kind"] == "RULE_MATCH"  # via rule

    def test_weighted_rule(self) -> None:
        # segment3.salty.user-key buckets at 0.14950
        segs = {"segment3": {"salt": "salty", "rules": [{"clauses": [], "weight": 14955}]}}
        flags = {"f": seg_rule_flag("segment3")}
        assert both(flags, segs, "f", USER)[2]["kind"] == "RULE_MATCH"
        segs["segment3"]["rules"][0]["weight"] = 14940
        assert both(flags, segs, "f", USER)[2]["kind"] == "FALLTHROUGH"

    def test_weighted_rule_without_the_rollout_kind_matches_like_python(self) -> None:
        # The Go evaluator says no match here; relay follows the Python SDK (PROTOCOL.md §7.10).
        segs = {"s": {"rules": [{"clauses": [], "weight": 1, "rolloutContextKind": "org"}]}}
        assert both({"f": seg_rule_flag("s")}, segs, "f", USER)[2]["kind"] == "RULE_MATCH"

    def test_nested_segments_and_unknown_keys(self) -> None:
        segs = {
            "outer": {"rules": [{"clauses": [clause("", "segmentMatch", ["inner"])]}]},
            "inner": {"included": ["user-key"]},
        }
        assert both({"f": seg_rule_flag("missing", "outer")}, segs, "f", USER)[2]["kind"] == "RULE_MATCH"

    def test_segment_cycle_is_malformed(self) -> None:
        segs = {
            "a": {"rules": [{"clauses": [clause("", "segmentMatch", ["b"])]}]},
            "b": {"rules": [{"clauses": [clause("", "segmentMatch", ["a"])]}]},
        }
        assert both({"f": seg_rule_flag("a")}, segs, "f", USER)[2]["errorKind"] == "MALFORMED_FLAG"

    def test_negated_segment_match(self) -> None:
        segs = {"s": {"included": ["someone-else"]}}
        assert both({"f": seg_rule_flag("s", negate=True)}, segs, "f", USER)[2]["kind"] == "RULE_MATCH"

    @pytest.mark.parametrize("generation", [None, 3])
    def test_big_segments_report_not_configured(self, generation: int | None) -> None:
        segs = {
            "big": {"unbounded": True, "generation": generation, "included": ["user-key"], "rules": [{"clauses": []}]}
        }
        result = both({"f": seg_rule_flag("big")}, segs, "f", USER)
        assert result[2]["bigSegmentsStatus"] == "NOT_CONFIGURED"


def test_all_flags_see_every_applied_change() -> None:
    """evaluate_all caches which flags it walks; a change applied to the ruleset retires that."""
    from relay.evaluation import parse_context, parse_flag
    from relay.store.ruleset import Change, Ruleset
    from relay.wire.clientside import for_browsers

    def item(version: int, **fields: Any) -> Any:
        csa = {"usingEnvironmentId": True, "usingMobileKey": True}
        return parse_flag({"key": "f", "version": version, "clientSideAvailability": csa, **flag(**fields)})

    rs = Ruleset("prod")
    rs.replace({"f": item(1)}, {}, 1)
    ctx = parse_context(USER)
    assert rs.snapshot.evaluate_all(ctx, for_browsers)["f"].value is True
    rs.apply(Change("prod", 2, "flag", "f", item(2, on=False)))
    assert rs.snapshot.evaluate_all(ctx, for_browsers)["f"].value is False
    rs.apply(Change("prod", 3, "flag", "f", item(3, clientSideAvailability={"usingEnvironmentId": False})))
    assert "f" not in rs.snapshot.evaluate_all(ctx, for_browsers)
