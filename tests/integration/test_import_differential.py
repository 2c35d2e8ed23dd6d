"""The differential suite through the real import path, not only the evaluator.

`tests.generators.lenient_dataset` makes LaunchDarkly data the SDKs evaluate but relay's write path
warns about (clause values an operator never matches, unknown operators, odd weights, out-of-range
variations, invalid kinds and references, a flag its own prerequisite, ...), on top of the
adversarial dataset of tests/evaluation/test_differential.py. It is imported with
`WritePath.import_items` into a real redis-server and loaded by two nodes' own `Sync`: one running
while the import's changes arrive over pub/sub, one started after it (a full load, lazily compiled
bodies). Every evaluation of both (one flag at a time and all flags at once: value, variation
index, reason, prerequisites) must equal LaunchDarkly's Python SDK 9.18.4 evaluator's on the raw
JSON generated, and on the JSON relay stored (what it serves to SDKs): 100% agreement.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from ldclient.context import Context as SDKContext
from ldclient.impl.evaluator import Evaluator
from ldclient.impl.events.types import EventFactory
from ldclient.impl.model import FeatureFlag, Segment

from relay.errors import InvalidContextError
from relay.evaluation import DataWarning, Evaluation, Snapshot, parse_context
from relay.store.sync import Sync
from tests.generators import is_old_user, lenient_dataset, old_user_to_new
from tests.integration.helpers import eventually, new_env, run_async, storage_for
from tests.integration.redis_server import RedisServer

SEEDS = (11, 12, 13, 14, 15)
N_FLAGS, N_SEGMENTS, N_CONTEXTS = 150, 40, 150
Outcome = tuple[Any, Any, Any, list[str]]

# Each class of warning the import must have reported (a floor per seed, so no class goes untried).
WARNING_CLASSES = {
    "never-matching value": "this value never matches",
    "unknown operator": "unknown operator",
    "variation out of range": "is out of range",
    "weights": "weights add up to",
    "weight out of range": "is outside 0..100000",
    "own prerequisite": "is its own prerequisite",
    "no outcome": "needs a variation or a rollout",
    "empty rollout": "at least one weighted variation",
    "invalid kind": "no context has this kind",
    "user entry values": "a user entry takes its keys",
    "targets never read": "never read",
    "old targets kind": '"targets" hold user keys',
    "invalid reference": "invalid attribute reference",
}
REASONS = ("OFF", "FALLTHROUGH", "TARGET_MATCH", "RULE_MATCH", "PREREQUISITE_FAILED", "ERROR:MALFORMED_FLAG")


def _same(a: Any, b: Any) -> bool:
    """JSON equality without Python's `True == 1 == 1.0`."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class SDK:
    """LaunchDarkly's evaluator over a `{"flags", "segments"}` document, with LDClient's checks before it."""

    def __init__(self, doc: dict[str, Any]) -> None:
        live = {kind: {k: v for k, v in doc[kind].items() if not v.get("deleted")} for kind in ("flags", "segments")}
        self.flags = {k: FeatureFlag(copy.deepcopy(v)) for k, v in live["flags"].items()}
        segments = {k: Segment(copy.deepcopy(v)) for k, v in live["segments"].items()}
        self.evaluator = Evaluator(self.flags.get, segments.get, lambda key: (None, "NOT_CONFIGURED"))

    def evaluate(self, key: str, context: SDKContext) -> Outcome:
        if not context.valid:
            return None, None, {"kind": "ERROR", "errorKind": "USER_NOT_SPECIFIED"}, []
        flag = self.flags.get(key)
        if flag is None:
            return None, None, {"kind": "ERROR", "errorKind": "FLAG_NOT_FOUND"}, []
        state = self.evaluator.evaluate(flag, context, EventFactory(False))
        return state.detail.value, state.detail.variation_index, state.detail.reason, list(state.prerequisites)


def _relay(ev: Evaluation) -> Outcome:
    return ev.value, ev.variation, ev.reason.to_dict(), list(ev.prerequisites)


def _kind(reason: dict[str, Any]) -> str:
    return reason["kind"] + (f":{reason['errorKind']}" if reason["kind"] == "ERROR" else "")


async def _import_and_load(url: str, doc: dict[str, Any]) -> tuple[list[DataWarning], Snapshot, Snapshot, Any]:
    """Import `doc` while one node runs, start a second after; both nodes' snapshots, and the export."""
    admin, _ = await new_env(url)
    early = Sync(storage_for(url), fuse_after=0)  # fused runs from the first all-flags call
    tasks = [asyncio.create_task(early.run())]
    try:
        await asyncio.wait_for(early.state.loaded.wait(), 10)
        result = await admin.import_items("prod", copy.deepcopy(doc))
        assert result.data_versions, "the import wrote nothing"
        version = result.data_versions[-1]
        await eventually(lambda: early.state.rulesets["prod"].version == version, what="the import's changes")
        late = Sync(storage_for(url))  # the step loop first (fuse_after's default)
        tasks.append(asyncio.create_task(late.run()))
        await asyncio.wait_for(late.state.loaded.wait(), 10)
        assert late.state.rulesets["prod"].version == version
        stored = await admin.export("prod")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return result.warnings, early.state.rulesets["prod"].snapshot, late.state.rulesets["prod"].snapshot, stored


@pytest.fixture(autouse=True)
def _quiet_sdk() -> Iterator[None]:
    """The SDK logs every missing prerequisite and cycle it meets: thousands of expected lines."""
    logger = logging.getLogger("ldclient")
    level, logger.level = logger.level, logging.CRITICAL
    yield
    logger.setLevel(level)


@pytest.mark.parametrize("seed", SEEDS)
def test_lenient_data_through_the_import_evaluates_as_the_sdk(redis_server: RedisServer, seed: int) -> None:
    ds = lenient_dataset(seed, N_FLAGS, N_SEGMENTS, N_CONTEXTS)
    doc = {kind: {k: v for k, v in items.items() if not v.get("deleted")} for kind, items in ds.ld_json().items()}
    raw = json.loads(json.dumps(ds.ld_json()))  # the SDK's copy, tombstones included (it skips them)
    warnings, early, late, stored = run_async(_import_and_load(redis_server.url, doc))

    found = Counter(name for w in warnings for name, needle in WARNING_CLASSES.items() if needle in w.message)
    assert all(found[name] >= 2 for name in WARNING_CLASSES), f"warning classes untried: {found}"
    assert all(w.path.startswith(("flags.", "segments.")) for w in warnings)

    sdk_raw, sdk_stored = SDK(raw), SDK(stored)
    keys = [*ds.flags, "no-such-flag"]
    reasons: Counter[str] = Counter()
    mismatches: list[str] = []
    compared = failed = 0
    for raw_ctx in ds.contexts:
        sdk_ctx = SDKContext.from_dict(old_user_to_new(raw_ctx) if is_old_user(raw_ctx) else raw_ctx)
        try:
            ctx = parse_context(raw_ctx)
        except InvalidContextError:
            ctx = None
        assert (ctx is not None) == sdk_ctx.valid, raw_ctx
        alls = [] if ctx is None else [(name, s.evaluate_all(ctx)) for name, s in (("early", early), ("late", late))]
        for key in keys:
            expected = sdk_raw.evaluate(key, sdk_ctx)
            reasons[_kind(expected[2])] += 1
            got = {
                "SDK on the stored JSON": sdk_stored.evaluate(key, sdk_ctx),
                "early node": _relay(early.evaluate(key, ctx)),
                "late node": _relay(late.evaluate(key, ctx)),
            }
            for name, everything in alls:
                if key in everything:
                    got[f"{name} node, all flags"] = _relay(everything[key])
            for what, outcome in got.items():
                compared += 1
                if _same(list(outcome), list(expected)):
                    continue
                failed += 1
                if len(mismatches) < 5:
                    flag_json = json.dumps(raw["flags"].get(key), sort_keys=True)
                    mismatches.append(
                        f"{what}: flag {key}\n  SDK:   {expected}\n  relay: {outcome}\n"
                        f"  context: {json.dumps(raw_ctx)}\n  flag: {flag_json}"
                    )
        for name, everything in alls:
            assert set(everything) == set(sdk_raw.flags), f"{name} node's all-flags keys differ"
    assert not failed, f"{failed} mismatches of {compared} comparisons:\n" + "\n\n".join(mismatches)
    assert compared >= N_CONTEXTS * N_FLAGS * 3
    assert all(reasons[r] >= 50 for r in REASONS), f"outcomes too rare to prove much: {reasons}"
