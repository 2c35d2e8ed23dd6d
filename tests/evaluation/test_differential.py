"""Differential test: relay's evaluator against LaunchDarkly's Python SDK 9.18.4, the oracle.

For each seed, `generators.generate_dataset` produces flags, segments and contexts covering every
model feature (valid and malformed-but-well-typed). The SDK loads the dataset through its file data
source; relay parses the same JSON with `strict=False`. Every (flag, context) pair must agree on
value, variation index and reason, and so must evaluate-all. The SDK is instrumented to count what
the run exercised, and `test_coverage` fails if any feature bucket stayed empty, so the comparison
cannot pass vacuously.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from ldclient.client import LDClient
from ldclient.config import Config
from ldclient.context import Context as LDContext
from ldclient.impl import evaluator as ld_evaluator
from ldclient.impl import evaluator_common as ld_common
from ldclient.impl import operators as ld_operators
from ldclient.integrations import Files

from relay.errors import InvalidContextError, ValidationError
from relay.evaluation import (
    DataWarning,
    Evaluation,
    Flag,
    Segment,
    Snapshot,
    parse_context,
    parse_flag,
    parse_segment,
)
from tests.generators import ALL_OPS, Dataset, generate_dataset, is_old_user, lenient_dataset, old_user_to_new

N_FLAGS, N_SEGMENTS, N_CONTEXTS = 150, 40, 120
# Seed 0 feeds the SDK relay's canonical `Flag.data`/`Segment.data`; the rest feed it the raw JSON.
# "lenient" runs add what the write path warns about (generators.lenient_dataset), and relay parses
# them as the write path does (strict, each finding a warning); tests/integration/test_import_differential.py
# takes the same data through a real import and real nodes.
RUNS = [(0, "canonical"), *((seed, "raw") for seed in range(1, 8)), (8, "lenient"), (9, "lenient")]
MAX_REPORTED = 4
SENTINEL = object()  # the caller's default: the SDK returns it exactly when relay's value is None
DEFAULT = "<default>"
UNKNOWN_FLAG = "no-such-flag"


@dataclass
class RunResult:
    evaluations: int = 0
    mismatches: int = 0
    reports: list[str] = field(default_factory=list)
    signatures: Counter[str] = field(default_factory=Counter)
    coverage: Counter[str] = field(default_factory=Counter)

    def mismatch(self, signature: str, report: str) -> None:
        self.mismatches += 1
        self.signatures[signature] += 1
        if len(self.reports) < MAX_REPORTED:
            self.reports.append(report)


def same(a: Any, b: Any) -> bool:
    """JSON equality without Python's `True == 1 == 1.0`."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=repr)


# --- instrumentation of the oracle (counts only; results are passed through untouched) ---------


class _LogCounter(logging.Handler):
    PATTERNS: ClassVar[dict[str, str]] = {
        "prerequisite relationship": "error:prerequisite-cycle",
        "segment rule referencing": "error:segment-cycle",
        "invalid attribute reference": "error:invalid-attribute-ref",
        "Missing prereq flag": "prerequisite:missing-flag",
    }

    def __init__(self, coverage: Counter[str]) -> None:
        super().__init__(logging.DEBUG)
        self.coverage = coverage

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for needle, bucket in self.PATTERNS.items():
            if needle in message:
                self.coverage[bucket] += 1


@contextlib.contextmanager
def _instrumented(coverage: Counter[str]) -> Iterator[None]:
    last_bucket: list[float] = [0.0]

    def count_op(name: str, fn: Any) -> Any:
        def wrapper(u: Any, c: Any, pre: Any) -> bool:
            result = fn(u, c, pre)
            if result:
                coverage[f"op-true:{name}"] += 1
            return result

        return wrapper

    clause_matches = ld_evaluator.Evaluator._clause_matches_context

    def clause_wrapper(self: Any, clause: Any, context: Any, state: Any) -> bool:
        result = clause_matches(self, clause, context, state)
        if result:
            coverage[f"clause-match:{clause.op}"] += 1
            if clause.negate:
                coverage["clause-match:negated"] += 1
            if clause.context_kind not in (None, "", "user"):
                coverage["clause-match:non-user-kind"] += 1
            if clause.attribute is not None and clause.attribute.depth > 1:
                coverage["clause-match:nested-path"] += 1
        return result

    def bucket_wrapper(origin: str, fn: Any) -> Any:
        def wrapper(seed: Any, context: Any, kind: Any, key: str, salt: str, bucket_by: Any) -> float:
            result = fn(seed, context, kind, key, salt, bucket_by)
            last_bucket[0] = result
            coverage[f"bucket:{origin}"] += 1
            if result < 0:
                coverage[f"bucket:{origin}:context-kind-missing"] += 1
            if seed is not None:
                coverage["bucket:seeded"] += 1
            return result

        return wrapper

    bucketable = ld_common._bucketable_string_value

    def bucketable_wrapper(value: Any) -> str | None:
        kind = "bool" if isinstance(value, bool) else type(value).__name__
        coverage[f"bucket-value:{kind}"] += 1
        return bucketable(value)

    variation_index = ld_common._variation_index_for_context

    def variation_index_wrapper(flag: Any, vr: Any, context: Any) -> Any:
        last_bucket[0] = -2.0
        index, in_experiment = variation_index(flag, vr, context)
        rollout = vr.rollout if vr.variation is None else None
        if rollout is not None:
            if not rollout.variations:
                coverage["rollout:empty"] += 1
            elif last_bucket[0] >= sum(wv.weight for wv in rollout.variations) / 100000.0:
                coverage["rollout:past-last-bucket"] += 1
        return index, in_experiment

    handler = _LogCounter(coverage)
    ld_logger = logging.getLogger("ldclient")
    with pytest.MonkeyPatch.context() as mp:
        for name, fn in list(ld_operators.ops.items()):
            mp.setitem(ld_operators.ops, name, count_op(name, fn))
        mp.setattr(ld_evaluator.Evaluator, "_clause_matches_context", clause_wrapper)
        mp.setattr(ld_common, "_bucket_context", bucket_wrapper("rollout", ld_common._bucket_context))
        mp.setattr(ld_evaluator, "_bucket_context", bucket_wrapper("segment-rule", ld_evaluator._bucket_context))
        mp.setattr(ld_common, "_bucketable_string_value", bucketable_wrapper)
        mp.setattr(ld_common, "_variation_index_for_context", variation_index_wrapper)
        # Thousands of expected SDK warnings (invalid contexts, missing prerequisites) would
        # otherwise pile up in pytest's log capture; count them instead.
        mp.setattr(ld_logger, "propagate", False)
        ld_logger.addHandler(handler)
        try:
            yield
        finally:
            ld_logger.removeHandler(handler)


# --- one run -----------------------------------------------------------------------------------


def _parse_relay(ds: Dataset, result: RunResult, as_written: bool) -> tuple[dict[str, Flag], dict[str, Segment]]:
    """Parse every item with relay (`as_written`: as the write path does); an item relay refuses is
    reported and left out on both sides."""
    flags: dict[str, Flag] = {}
    segments: dict[str, Segment] = {}
    notes: list[DataWarning] | None = [] if as_written else None
    for key, raw in ds.flags.items():
        try:
            flags[key] = parse_flag(raw, path=f"flags.{key}", strict=as_written, warnings=notes)
        except ValidationError as e:
            result.mismatch("parse_flag refused", f"relay refused flag the SDK accepts: {e}\n  {_dump(raw)}")
    for key, raw in ds.segments.items():
        try:
            segments[key] = parse_segment(raw, path=f"segments.{key}", strict=as_written, warnings=notes)
        except ValidationError as e:
            result.mismatch("parse_segment refused", f"relay refused segment the SDK accepts: {e}\n  {_dump(raw)}")
    return flags, segments


def _start_sdk(document: dict[str, Any], directory: Path) -> LDClient:
    path = directory / "flags.json"
    text = json.dumps(document)
    path.write_text(text)
    # The file data source parses with PyYAML (YAML 1.1) when installed: make sure it reads our
    # JSON as JSON, or the two sides would not be looking at the same data.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assert same(yaml.load(text, Loader=loader), json.loads(text)), "YAML reads the JSON differently"
    config = Config(
        "sdk-differential", update_processor_class=Files.new_data_source(paths=[str(path)]), send_events=False
    )
    client = LDClient(config, start_wait=5)
    assert client.is_initialized(), "the SDK refused the generated data file"
    return client


def _sdk_outcome(detail: Any) -> tuple[Any, Any, Any]:
    value = DEFAULT if detail.value is SENTINEL else detail.value
    return value, detail.variation_index, detail.reason


def _relay_outcome(ev: Evaluation) -> tuple[Any, Any, Any]:
    value = DEFAULT if ev.value is None and ev.variation is None else ev.value
    return value, ev.variation, ev.reason.to_dict()


PARTS = ("value", "variation", "reason", "prerequisites")


def _kind(reason: Any) -> str:
    if not isinstance(reason, dict):
        return "<raised>"
    return str(reason.get("kind")) + (f"/{reason.get('errorKind')}" if reason.get("kind") == "ERROR" else "")


def _count_outcome(coverage: Counter[str], value: Any, variation: Any, reason: dict[str, Any]) -> None:
    kind = reason["kind"]
    coverage[f"reason:{kind}" + (f":{reason['errorKind']}" if kind == "ERROR" else "")] += 1
    if reason.get("inExperiment"):
        coverage[f"inExperiment:{kind}"] += 1
    if "bigSegmentsStatus" in reason:
        coverage[f"bigSegmentsStatus:{reason['bigSegmentsStatus']}"] += 1
        coverage[f"bigSegmentsStatus-with:{kind}"] += 1
    if kind == "RULE_MATCH" and reason.get("ruleId") is None:
        coverage["ruleId:null"] += 1
    if kind in ("OFF", "PREREQUISITE_FAILED") and variation is None:
        coverage[f"off-variation-null:{kind}"] += 1
    if variation is not None and value is None:
        coverage["variation-value:null"] += 1


def _context_shape(raw: Any) -> str:
    if is_old_user(raw):
        return "old-user"
    if raw.get("kind") == "multi":
        return "multi"
    return "user" if raw.get("kind") == "user" else "other-kind"


def _report(flag_key: str, ds: Dataset, fed: dict[str, Any], raw_ctx: Any, what: str, sdk: Any, relay: Any) -> str:
    flag_raw = ds.flags.get(flag_key)
    lines = [
        f"{what}: flag {flag_key!r}",
        f"  SDK:   {_dump(sdk)}",
        f"  relay: {_dump(relay)}",
        f"  context: {_dump(raw_ctx)}",
        f"  flag JSON: {_dump(flag_raw)}",
    ]
    fed_flag = fed["flags"].get(flag_key)
    if fed_flag is not None and not same(fed_flag, flag_raw):
        lines.append(f"  flag JSON fed to the SDK (relay canonical): {_dump(fed_flag)}")
    return "\n".join(lines)


@functools.cache
def run(seed: int, feed: str) -> RunResult:
    result = RunResult()
    ds = (lenient_dataset if feed == "lenient" else generate_dataset)(seed, N_FLAGS, N_SEGMENTS, N_CONTEXTS)
    flags, segments = _parse_relay(ds, result, as_written=feed == "lenient")
    if feed == "canonical":
        fed = {"flags": {k: f.data for k, f in flags.items()}, "segments": {k: s.data for k, s in segments.items()}}
        for key, flag in flags.items():  # canonical JSON must be a fixed point of parse_flag
            if not same(parse_flag(flag.data, strict=False).data, flag.data):
                result.mismatch("canonical not idempotent", f"parse_flag(flag.data).data != flag.data for {key}")
    else:
        fed = {"flags": {k: ds.flags[k] for k in flags}, "segments": {k: ds.segments[k] for k in segments}}
    # All-flags calls through fused runs from the first call, checked against the SDK and against
    # the step loop (a snapshot that never fuses), which must agree result for result.
    snapshot = Snapshot(flags, segments, fuse_after=0)
    step_loop = Snapshot(flags, segments, fuse_after=sys.maxsize)
    keys = [*ds.flags, UNKNOWN_FLAG]
    cov = result.coverage
    with tempfile.TemporaryDirectory() as tmp, _instrumented(cov):
        client = _start_sdk(fed, Path(tmp))
        try:
            for raw_ctx in ds.contexts:
                _compare_context(raw_ctx, keys, ds, fed, snapshot, client, result, step_loop)
        finally:
            client.close()
    cov["flags:deleted"] += sum(1 for f in ds.flags.values() if f.get("deleted"))
    cov["segments:deleted"] += sum(1 for s in ds.segments.values() if s.get("deleted"))
    return result


def _compare_context(
    raw_ctx: Any,
    keys: list[str],
    ds: Dataset,
    fed: dict[str, Any],
    snapshot: Snapshot,
    client: LDClient,
    result: RunResult,
    step_loop: Snapshot,
) -> None:
    cov = result.coverage
    sdk_ctx = LDContext.from_dict(old_user_to_new(raw_ctx) if is_old_user(raw_ctx) else raw_ctx)
    try:
        relay_ctx = parse_context(raw_ctx)
    except InvalidContextError:
        relay_ctx = None
    except Exception as e:
        result.mismatch("parse_context raised", f"parse_context raised {e!r} for {_dump(raw_ctx)}")
        return
    if (relay_ctx is None) == sdk_ctx.valid:
        result.mismatch(
            "context validity",
            f"context validity differs: SDK valid={sdk_ctx.valid} ({sdk_ctx.error}), "
            f"relay parsed={relay_ctx is not None}\n  context: {_dump(raw_ctx)}",
        )
        return
    cov["context:invalid" if relay_ctx is None else f"context:{_context_shape(raw_ctx)}"] += 1

    for key in keys:
        sdk = _sdk_outcome(client.variation_detail(key, sdk_ctx, SENTINEL))
        try:
            relay = _relay_outcome(snapshot.evaluate(key, relay_ctx))
        except Exception:
            relay = ("<raised>", None, traceback.format_exc(limit=3))
        result.evaluations += 1
        _count_outcome(cov, *sdk)
        differs = [part for part, a, b in zip(PARTS[:3], sdk, relay, strict=True) if not same(a, b)]
        if differs:
            signature = f"evaluate {'+'.join(differs)}: SDK {_kind(sdk[2])} vs relay {_kind(relay[2])}"
            result.mismatch(signature, _report(key, ds, fed, raw_ctx, "evaluate", sdk, relay))

    state = client.all_flags_state(sdk_ctx, with_reasons=True)
    if relay_ctx is None:
        assert not state.valid
        return
    try:
        relay_all = snapshot.evaluate_all(relay_ctx)
    except Exception:
        result.mismatch("evaluate_all raised", f"evaluate_all raised\n{traceback.format_exc(limit=3)}")
        return
    unfused = step_loop.evaluate_all(relay_ctx)
    if list(unfused.items()) != list(relay_all.items()):
        differ = [k for k in unfused if unfused[k] != relay_all.get(k)]
        result.mismatch(
            "evaluate_all fused vs step loop",
            f"fused runs and the step loop differ for {differ[:5]}"
            + "".join(f"\n  {k}:\n    step loop {unfused[k]}\n    fused     {relay_all.get(k)}" for k in differ[:3])
            + f"\n  context: {_dump(raw_ctx)}",
        )
        cov["evaluate-all:fused-differs"] += 1
    meta = state.to_json_dict()["$flagsState"]
    if set(meta) != set(relay_all):
        result.mismatch(
            "evaluate_all keys",
            f"evaluate_all keys differ: SDK-only {sorted(set(meta) - set(relay_all))}"
            f", relay-only {sorted(set(relay_all) - set(meta))}",
        )
    for key in sorted(set(meta) & set(relay_all)):
        ev = relay_all[key]
        sdk_all = (
            state.get_flag_value(key),
            meta[key].get("variation"),
            meta[key]["reason"],
            meta[key].get("prerequisites", []),
        )
        relay_one = (ev.value, ev.variation, ev.reason.to_dict(), list(ev.prerequisites))
        cov["evaluate-all:compared"] += 1
        if sdk_all[3]:
            cov["evaluate-all:with-prerequisites"] += 1
        differs = [part for part, a, b in zip(PARTS, sdk_all, relay_one, strict=True) if not same(a, b)]
        if differs:
            signature = f"evaluate_all {'+'.join(differs)}: SDK {_kind(sdk_all[2])}"
            result.mismatch(signature, _report(key, ds, fed, raw_ctx, "evaluate_all", sdk_all, relay_one))
        if ev.in_experiment != bool(ev.reason.to_dict().get("inExperiment")):
            result.mismatch("in_experiment", f"Evaluation.in_experiment disagrees with its reason for {key}")


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "feed"), RUNS, ids=[f"seed{s}-{f}" for s, f in RUNS])
def test_relay_agrees_with_sdk(seed: int, feed: str) -> None:
    result = run(seed, feed)
    assert result.evaluations >= N_CONTEXTS * N_FLAGS * 0.9
    if result.mismatches:
        summary = "\n".join(f"  {n:6} {sig}" for sig, n in result.signatures.most_common())
        pytest.fail(
            f"{result.mismatches} mismatches out of {result.evaluations} evaluations:\n{summary}\n\n"
            + "\n\n".join(result.reports),
            pytrace=False,
        )


# Every bucket must be hit at least this often over all runs.
REQUIRED_COVERAGE: dict[str, int] = {
    **{f"reason:{k}": 200 for k in ("OFF", "FALLTHROUGH", "TARGET_MATCH", "RULE_MATCH", "PREREQUISITE_FAILED")},
    "reason:ERROR:MALFORMED_FLAG": 200,
    "reason:ERROR:USER_NOT_SPECIFIED": 100,
    "reason:ERROR:FLAG_NOT_FOUND": 100,
    "inExperiment:FALLTHROUGH": 50,
    "inExperiment:RULE_MATCH": 10,
    "bigSegmentsStatus:NOT_CONFIGURED": 20,
    "bigSegmentsStatus-with:ERROR": 10,
    "bigSegmentsStatus-with:PREREQUISITE_FAILED": 10,
    "ruleId:null": 10,
    "off-variation-null:OFF": 50,
    "off-variation-null:PREREQUISITE_FAILED": 50,
    "variation-value:null": 50,
    **{f"clause-match:{op}": 5 for op in ALL_OPS},
    **{f"op-true:{op}": 5 for op in ALL_OPS if op != "segmentMatch"},
    "clause-match:negated": 50,
    "clause-match:non-user-kind": 20,
    "clause-match:nested-path": 20,
    "bucket:rollout": 500,
    "bucket:rollout:context-kind-missing": 20,
    "bucket:seeded": 100,
    "bucket:segment-rule": 50,
    "bucket:segment-rule:context-kind-missing": 5,
    "bucket-value:str": 500,
    "bucket-value:int": 20,
    "bucket-value:bool": 5,
    "bucket-value:float": 5,
    "rollout:past-last-bucket": 20,
    "rollout:empty": 5,
    "error:prerequisite-cycle": 20,
    "error:segment-cycle": 50,
    "error:invalid-attribute-ref": 20,
    "prerequisite:missing-flag": 20,
    "context:user": 100,
    "context:other-kind": 50,
    "context:multi": 100,
    "context:old-user": 50,
    "context:invalid": 20,
    "evaluate-all:compared": 50000,
    "evaluate-all:with-prerequisites": 1000,
    "flags:deleted": 5,
    "segments:deleted": 3,
}


def test_coverage() -> None:
    """The differential test exercised every feature (no vacuous pass)."""
    total: Counter[str] = Counter()
    for seed, feed in RUNS:
        total.update(run(seed, feed).coverage)
    missing = {k: (total[k], n) for k, n in REQUIRED_COVERAGE.items() if total[k] < n}
    assert not missing, f"coverage below minimum (got, want): {missing}\nall counts: {dict(sorted(total.items()))}"
