"""Compiling the parts flags and segments share (clauses, variations and rollouts), with the checks
strict compiling runs on them.

What a strict check finds is something LaunchDarkly's SDKs evaluate without error but that only
ever evaluates to MALFORMED_FLAG or never matches (docs/compatibility.md lists each): a `Builder`
given a `warnings` list collects it, with its JSON path, and compiles the item exactly as the SDKs
evaluate it; without a list it refuses it (strict writes). What the SDKs would refuse or crash on
is refused either way, by the Reader's type checks and here.
"""

from __future__ import annotations

from typing import Any

from relay.evaluation.attrref import AttrRef, for_bucket_by, for_clause
from relay.evaluation.clauses import compile_bucket, compile_clause
from relay.evaluation.context import kind_error
from relay.evaluation.model import ClauseFn, Evaluation, OutcomeFn, Reason, malformed
from relay.evaluation.operators import OPERATORS, value_problem
from relay.evaluation.reader import DataWarning, Reader, json_type

_MALFORMED = "evaluates to MALFORMED_FLAG where it is reached"
_MALFORMED_FOR_KIND = "evaluates to MALFORMED_FLAG for contexts of its kind"
STRICT_REFUSAL = "; strict writes refuse this (other writes accept it with a warning)"


class Builder:
    """State shared while compiling one item: its variations, strictness, referenced segments and,
    when strict, what LaunchDarkly's SDKs evaluate without error but a writer should hear about:
    collected in `warnings` when given a list, else refused (strict writes)."""

    def __init__(
        self,
        strict: bool,
        variations: tuple[Any, ...] = (),
        trusted: bool = False,
        warnings: list[DataWarning] | None = None,
    ) -> None:
        self.strict = strict
        self.trusted = trusted  # input is canonical JSON relay wrote: keep it as the canonical form
        self.variations = variations
        self.segment_keys: set[str] = set()
        self.warnings = warnings

    def warn(self, r: Reader, name: str, message: str) -> None:
        """One of the strict checks' findings at `r`'s field `name`: a warning, or a refusal."""
        if self.warnings is None:
            r.fail(name, message + STRICT_REFUSAL)
        self.warnings.append(DataWarning(r.at(name), message))

    def result(self, index: int, reason: Reason, prereqs: tuple[str, ...]) -> Evaluation:
        if index < 0 or index >= len(self.variations):
            return malformed(prereqs)
        return Evaluation(self.variations[index], index, reason, prereqs)

    def check_index(self, r: Reader, name: str, index: int) -> None:
        if self.strict and not 0 <= index < len(self.variations):
            n = len(self.variations)
            self.warn(r, name, f"variation index {index} is out of range (the flag has {n} variations): {_MALFORMED}")

    def check_kind(self, r: Reader, name: str, kind: str | None) -> None:
        if self.strict and kind:
            problem = kind_error(kind)
            if problem:
                self.warn(r, name, f"{problem}: no context has this kind")

    def check_ref(self, r: Reader, name: str, ref: AttrRef | None) -> None:
        if self.strict and ref is not None and ref.error is not None:
            self.warn(r, name, f'invalid attribute reference "{ref.raw}": {ref.error}; {_MALFORMED_FOR_KIND}')

    def clause(self, r: Reader) -> tuple[ClauseFn, dict[str, Any]]:
        context_kind = r.opt_str("contextKind")
        op = r.req_str("op")
        # The SDKs require `attribute`; segmentMatch ignores it, so the write path fills in "".
        lenient_attr = self.strict and op == "segmentMatch" and r.data.get("attribute") is None
        attribute = "" if lenient_attr else r.req_str("attribute")
        values = r.req_list("values")
        negate = r.opt_bool("negate")
        ref = for_clause(attribute, context_kind)
        self.check_kind(r, "contextKind", context_kind)
        if self.strict:
            if op not in OPERATORS:  # (a newer LaunchDarkly's, say) the SDKs' ops.get(op) finds nothing
                self.warn(r, "op", f'unknown operator "{op}": it matches no value, as in LaunchDarkly\'s SDKs')
            if op != "segmentMatch":
                self.check_ref(r, "attribute", ref)
            for i, value in enumerate(values):
                problem = value_problem(op, value)
                if problem:
                    text = f"{problem}, got {json_type(value)}"
                    if op == "segmentMatch" and type(value) in (list, dict):
                        # The Python SDK looks the segment up by this value: an unhashable key raises.
                        r.fail(f"values[{i}]", text)
                    # The compiled test leaves this value out (relay.evaluation.operators), as the SDKs skip it.
                    self.warn(r, f"values[{i}]", f"{text}: this value never matches")
        if op == "segmentMatch":
            self.segment_keys.update(v for v in values if isinstance(v, str))
        if self.trusted:
            return compile_clause(ref, context_kind, op, values, negate), r.data
        canonical: dict[str, Any] = {**r.data, "attribute": attribute, "op": op, "values": values, "negate": negate}
        if context_kind is None:
            canonical.pop("contextKind", None)
        return compile_clause(ref, context_kind, op, values, negate), canonical

    def clauses(self, r: Reader) -> tuple[tuple[ClauseFn, ...], list[dict[str, Any]]]:
        fns, canon = [], []
        for c in r.objects("clauses", required=True):
            fn, data = self.clause(c)
            fns.append(fn)
            canon.append(data)
        return tuple(fns), canon

    def outcome(
        self, r: Reader, reason: Reason, flag_key: str, salt: str, prereqs: tuple[str, ...]
    ) -> tuple[OutcomeFn, dict[str, Any]]:
        """A variation-or-rollout (a rule's or the fallthrough)."""
        data = r.data
        variation = r.opt_int("variation")
        rollout_data = r.opt_dict("rollout")
        if variation is not None:
            self.check_index(r, "variation", variation)
            fixed = self.result(variation, reason, prereqs)
            outcome = lambda ctx: fixed  # noqa: E731 - it carries the constant for codegen too
            outcome.fixed = fixed  # type: ignore[attr-defined]
            return outcome, {**data}
        if rollout_data is None:
            if self.strict:
                self.warn(r, "", f"needs a variation or a rollout: {_MALFORMED}")
            bad = malformed(prereqs)
            return (lambda ctx: bad), {**data}
        return self.rollout(r.child(rollout_data, "rollout"), reason, flag_key, salt, prereqs, data)

    def rollout(
        self, r: Reader, reason: Reason, flag_key: str, salt: str, prereqs: tuple[str, ...], parent: dict[str, Any]
    ) -> tuple[OutcomeFn, dict[str, Any]]:
        context_kind = r.opt_str("contextKind")
        bucket_by_raw = r.opt_str("bucketBy")
        experiment = r.opt_str("kind") == "experiment"
        seed = r.opt_int("seed")
        weighted = r.objects("variations", required=True)
        self.check_kind(r, "contextKind", context_kind)
        bucket_by = None if experiment else for_bucket_by(bucket_by_raw, context_kind)
        self.check_ref(r, "bucketBy", bucket_by)
        canonical = {**parent, "rollout": {**r.data, "variations": [w.data for w in weighted]}}
        if not weighted:
            if self.strict:
                self.warn(r, "variations", f"a rollout needs at least one weighted variation: {_MALFORMED}")
            bad = malformed(prereqs)
            return (lambda ctx: bad), canonical
        in_exp = Reason(reason.kind, reason.rule_index, reason.rule_id, in_experiment=True)
        thresholds: list[float] = []
        plain: list[Evaluation] = []
        tracked: list[Evaluation] = []
        total, cumulative = 0, 0.0
        for w in weighted:
            index, weight = w.req_int("variation"), w.req_int("weight")
            untracked = w.opt_bool("untracked")
            self.check_index(w, "variation", index)
            if self.strict and not 0 <= weight <= 100000:
                self.warn(w, "weight", f"weight {weight} is outside 0..100000: the bucket walk adds it as it is")
            total += weight
            cumulative += weight / 100000.0  # same float arithmetic as the SDK, bucket by bucket
            thresholds.append(cumulative)
            plain.append(self.result(index, reason, prereqs))
            tracked.append(self.result(index, reason if untracked else in_exp, prereqs))
        if self.strict and total != 100000:
            self.warn(r, "variations", _weights_note(total))
        bucket = compile_bucket(seed, flag_key, salt, context_kind, bucket_by)
        pairs = tuple(zip(thresholds, plain, tracked, strict=True))
        last_plain, last_tracked = plain[-1], tracked[-1]

        def roll(ctx: Any) -> Evaluation:
            b = bucket(ctx)
            exp = experiment and b >= 0  # a context without the rollout's kind is never in the experiment
            for threshold, p, t in pairs:
                if b < threshold:
                    return t if exp else p
            return last_tracked if exp else last_plain  # past the last bucket: the last one wins

        by_key = getattr(bucket, "by_key", None)
        if by_key is not None:  # for relay.evaluation.generated.codegen, which writes this roll out inline
            roll.inline = (*by_key, thresholds, plain, tracked, experiment)  # type: ignore[attr-defined]
        return roll, canonical


def _weights_note(total: int) -> str:
    """What the SDKs' bucket walk makes of weights that do not add up to 100000."""
    if total > 100000:
        return f"weights add up to {total}, more than 100000: buckets past 100000 are never reached"
    return f"weights add up to {total}, not 100000: contexts past the last bucket get the last one's variation"
