"""Prerequisites, as LaunchDarkly checks them, and the MALFORMED_FLAG result of an aborted
evaluation (which lists the prerequisites seen before the abort, as the SDKs report).

Called from each flag's generated code (relay.evaluation.generated.codegen) and from the
evaluator's step loop; the fused runs (relay.evaluation.generated.fusion) check prerequisites
already evaluated in the call inline, with the same verdict.
"""

from __future__ import annotations

from relay.evaluation.context import Context
from relay.evaluation.model import MALFORMED, Evaluation, FlagBody, MalformedFlag, Prerequisite, malformed
from relay.evaluation.state import EvalState


def check_prerequisites(
    flag_key: str, prerequisites: tuple[Prerequisite, ...], ctx: Context, state: EvalState
) -> Evaluation | None:
    """The first failed prerequisite's result, or None (called from each flag's generated code)."""
    nested = flag_key != state.original_key
    if nested:
        state.prereq_stack.append(flag_key)
    try:
        for prereq in prerequisites:
            if prereq.key == state.original_key or prereq.key in state.prereq_stack:
                raise MalformedFlag(f'prerequisite "{prereq.key}" makes a cycle')
            if not nested:
                state.prereqs_seen += 1
            prereq_flag = state.flags.get(prereq.key)
            if prereq_flag is None or prereq_flag.deleted:
                return prereq.failed
            # Evaluated already for this context without aborting: the same result here (a
            # prerequisite's result does not depend on who asks; see docs/evaluation-api.md).
            done = state.done
            result = None if done is None else done.get(prereq.key)
            if result is None:
                result = prereq_flag.body.run(ctx, state)
                if done is not None and state.big_segments_status is None:
                    # Kept for the flags after this one; not when it consulted a Big Segment (the
                    # status is the top-level flag's to report) or aborted (it raised, so never here).
                    done[prereq.key] = result
            # An off prerequisite fails whatever its off variation is.
            if not prereq_flag.on or result.variation != prereq.variation:
                return prereq.failed
        return None
    finally:
        if nested:
            state.prereq_stack.pop()


def aborted(body: FlagBody, state: EvalState) -> Evaluation:
    """MALFORMED_FLAG for an evaluation LaunchDarkly aborts, listing the prerequisites it saw."""
    state.prereq_stack.clear()  # a reused state must start the next flag empty
    state.segment_stack.clear()
    seen = state.prereqs_seen
    return malformed(tuple(p.key for p in body.prerequisites[:seen])) if seen else MALFORMED
