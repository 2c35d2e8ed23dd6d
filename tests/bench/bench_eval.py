"""Evaluation benchmark: relay's evaluator side by side with LaunchDarkly's Python SDK evaluator.

    python -m tests.bench.bench_eval [--quick] [--json]

Both evaluators get the same flags and the same (pre-parsed) contexts in the same process, batches
interleaved so that machine noise hits both alike; the ratio is the figure that travels between
machines. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from ldclient.context import Context as SDKContext
from ldclient.impl.evaluator import Evaluator
from ldclient.impl.events.types import EventFactory
from ldclient.impl.model import FeatureFlag, Segment

from relay.evaluation import Snapshot, evaluate, parse_context, parse_flag, parse_segment
from tests.generators import realistic_contexts, realistic_dataset, realistic_flag


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _batches(fn: Callable[[], None], per_batch: int, batches: int) -> list[float]:
    """Microseconds per operation, one figure per batch."""
    out = []
    for _ in range(batches):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / per_batch / 1000)
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "median_us": round(statistics.median(samples), 3),
        "p90_us": round(samples[int(len(samples) * 0.9)], 3),
        "min_us": round(samples[0], 3),
    }


def _sdk_side(doc: dict[str, Any]) -> tuple[dict[str, FeatureFlag], Evaluator]:
    flags = {k: FeatureFlag(v) for k, v in doc["flags"].items()}
    segments = {k: Segment(v) for k, v in doc["segments"].items()}
    return flags, Evaluator(flags.get, segments.get, lambda key: (None, "NOT_CONFIGURED"))


def _relay_side(doc: dict[str, Any]) -> Snapshot:
    flags = {k: parse_flag(v) for k, v in doc["flags"].items()}
    segments = {k: parse_segment(v) for k, v in doc["segments"].items()}
    return Snapshot(flags, segments)


def run(quick: bool = False) -> dict[str, Any]:
    rounds = 40 if quick else 300
    contexts = realistic_contexts(100, seed=1)
    ours_ctx = [parse_context(c) for c in contexts]
    sdk_ctx = [SDKContext.from_dict(c) for c in contexts]
    factory = EventFactory(False)

    # 1. One realistic flag: 5 rules x 3 clauses, user targets, a rollout fallthrough.
    rng = random.Random(7)
    one = {"flags": {"checkout": realistic_flag(rng, "checkout")}, "segments": {}}
    snap = _relay_side(one)
    flag = snap.flags["checkout"]
    sdk_flags, sdk = _sdk_side(one)
    sdk_flag = sdk_flags["checkout"]
    for a, b in zip(ours_ctx, sdk_ctx, strict=True):  # same answers, or the timing means nothing
        assert evaluate(flag, a, snap).value == sdk.evaluate(sdk_flag, b, factory).detail.value

    def relay_one() -> None:
        for c in ours_ctx:
            evaluate(flag, c, snap)

    def sdk_one() -> None:
        for c in sdk_ctx:
            sdk.evaluate(sdk_flag, c, factory)

    per_flag: dict[str, list[float]] = {"relay": [], "sdk": []}
    for _ in range(rounds):
        per_flag["relay"] += _batches(relay_one, len(ours_ctx), 1)
        per_flag["sdk"] += _batches(sdk_one, len(sdk_ctx), 1)

    # 2. All flags for one context over 200 realistic flags and 20 segments.
    doc = realistic_dataset(n_flags=200, n_segments=20, seed=3)
    snap200 = _relay_side(doc)
    sdk_flags200, sdk200 = _sdk_side(doc)
    flag_list = list(sdk_flags200.values())

    def relay_all() -> None:
        for c in ours_ctx:
            snap200.evaluate_all(c)

    def sdk_all() -> None:
        for c in sdk_ctx:
            for f in flag_list:
                sdk200.evaluate(f, c, factory)

    # A batch is all 100 contexts (per-call figures are batch / 100), alternating the two sides.
    all_flags: dict[str, list[float]] = {"relay": [], "sdk": []}
    for _ in range(max(10, rounds // 10)):
        all_flags["relay"] += _batches(relay_all, len(ours_ctx), 1)
        all_flags["sdk"] += _batches(sdk_all, len(sdk_ctx), 1)

    # 3. Context parsing, which every client-side request pays once.
    parse = {
        "relay": _batches(lambda: [parse_context(c) for c in contexts], len(contexts), rounds // 4),
        "sdk": _batches(lambda: [SDKContext.from_dict(c) for c in contexts], len(contexts), rounds // 4),
    }

    def section(samples: dict[str, list[float]]) -> dict[str, Any]:
        ours, theirs = _summary(samples["relay"]), _summary(samples["sdk"])
        return {"relay": ours, "launchdarkly_sdk": theirs, "speedup": round(theirs["median_us"] / ours["median_us"], 2)}

    return {
        "machine": {"cpu": _cpu(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "rounds": rounds,
        "per_flag_eval": section(per_flag),
        "all_flags_200": section(all_flags),
        "context_parse": section(parse),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args()
    result = run(quick=args.quick)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['machine']['cpu']}, Python {result['machine']['python']}, {result['rounds']} rounds")
    print(f"{'benchmark':<22} {'relay median':>14} {'SDK median':>12} {'speedup':>8}")
    for name in ("per_flag_eval", "all_flags_200", "context_parse"):
        s = result[name]
        print(
            f"{name:<22} {s['relay']['median_us']:>11.2f} µs {s['launchdarkly_sdk']['median_us']:>9.2f} µs "
            f"{s['speedup']:>7.1f}x"
        )


if __name__ == "__main__":
    main()
