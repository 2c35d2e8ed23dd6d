"""The state of one evaluation in progress: what compiled code is handed besides the context.

Segment membership lives here because it is the state's to track: the stack that catches a
segment naming itself, the memo of verdicts for the rest of a context's flags, and the Big
Segments status the top-level flag reports. Prerequisites are relay.evaluation.prerequisites'.
"""

from __future__ import annotations

from collections.abc import Mapping

from relay.evaluation.context import DEFAULT_KIND, Context
from relay.evaluation.model import Evaluation, Flag, MalformedFlag, Segment

# relay has no Big Segment store, which LaunchDarkly's SDKs report as this status.
BIG_SEGMENTS_NOT_CONFIGURED = "NOT_CONFIGURED"


class EvalState:
    """Per-evaluation bookkeeping: cycle stacks and the Big Segments status.

    The one implementation of relay.evaluation.model.EvalStateLike, the type compiled clauses name."""

    __slots__ = (
        "big_segments_status",
        "done",
        "flags",
        "memo",
        "original_key",
        "prereq_stack",
        "prereqs_seen",
        "segment_stack",
        "segments",
    )

    def __init__(
        self,
        flags: Mapping[str, Flag],
        segments: Mapping[str, Segment],
        original_key: str,
        memo: dict[Segment, bool] | None = None,
        done: dict[str, Evaluation] | None = None,
    ) -> None:
        self.memo = memo
        # Results of flags already evaluated (without error) for this context: a prerequisite's
        # result does not depend on who asks, so an all-flags call evaluates each flag once.
        self.done = done
        self.flags = flags
        self.segments = segments
        self.original_key = original_key
        self.prereq_stack: list[str] = []
        self.segment_stack: list[str] = []
        self.big_segments_status: str | None = None
        self.prereqs_seen = 0  # how many of the top-level flag's prerequisites were looked at

    def segment_matches(self, segment: Segment, ctx: Context) -> bool:
        if segment.key in self.segment_stack:
            raise MalformedFlag(f'segment "{segment.key}" refers to itself')
        if segment.deleted:
            return False
        if segment.unbounded:
            if segment.generation is None or segment.unbounded_context_kind not in ctx.by_kind:
                if segment.generation is None:
                    self.big_segments_status = BIG_SEGMENTS_NOT_CONFIGURED
                return False
            # No membership store: fall through to the rules, without the include/exclude lists.
            self.big_segments_status = BIG_SEGMENTS_NOT_CONFIGURED
            return self._segment_rules_match(segment, ctx)
        check = segment.check
        if check is not None:
            # A segment without nested segments is a pure function of the context: remember it
            # for the rest of this context's flags.
            if self.memo is None:
                return check(ctx, self)
            hit = self.memo.get(segment)
            if hit is None:
                hit = self.memo[segment] = check(ctx, self)
            return hit
        return self._lists_or_rules(segment, ctx)

    def _lists_or_rules(self, segment: Segment, ctx: Context) -> bool:
        user = ctx.by_kind.get(DEFAULT_KIND)
        if user is not None and user.key in segment.included:
            return True
        for kind, keys in segment.included_contexts:
            single = ctx.by_kind.get(kind)
            if single is not None and single.key in keys:
                return True
        if user is not None and user.key in segment.excluded:
            return False
        for kind, keys in segment.excluded_contexts:
            single = ctx.by_kind.get(kind)
            if single is not None and single.key in keys:
                return False
        return self._segment_rules_match(segment, ctx)

    def _segment_rules_match(self, segment: Segment, ctx: Context) -> bool:
        if not segment.rules:
            return False
        if not segment.segment_keys:  # no nested segments, so no cycle can pass through here
            return _any_rule_matches(segment, ctx, self)
        self.segment_stack.append(segment.key)
        try:
            return _any_rule_matches(segment, ctx, self)
        finally:
            self.segment_stack.pop()


def _any_rule_matches(segment: Segment, ctx: Context, state: EvalState) -> bool:
    for rule in segment.rules:
        for clause in rule.clauses:
            if not clause(ctx, state):
                break
        else:
            if rule.bucket is None or rule.bucket(ctx) < rule.weight / 100000.0:  # type: ignore[operator]
                return True
    return False


# The state of flags that reach no other item (prerequisites, segments): their clauses never read
# it, so one shared object serves them all rather than one made per evaluation.
NO_STATE = EvalState({}, {}, "")
