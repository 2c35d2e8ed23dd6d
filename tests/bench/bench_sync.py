"""Sync benchmarks on a real redis-server: cold start of a big environment, and write → applied.

    python -m tests.bench.bench_sync [--flags 10000] [--writes 500] [--json]

Cold start: a node loads and compiles every flag and segment of an environment (Redis HGETALL +
JSON parse + validation + compile). Write → applied: from the start of a toggle through the
atomic write script and pub/sub until the node's ruleset holds the new version (writer and node
in one process, on loopback). Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from relay.store.ruleset import Change
from relay.store.sync import Sync
from relay.store.writes import WritePath
from tests.bench.bench_eval import _cpu
from tests.generators import realistic_dataset
from tests.integration.helpers import storage_for
from tests.integration.redis_server import RedisServer


def _pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return round(s[min(len(s) - 1, int(len(s) * p))], 3)


def _stats(samples: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(samples), 3), "max": round(max(samples), 3)}


async def _run(n_flags: int, n_writes: int, url: str) -> dict[str, Any]:
    admin = WritePath(storage_for(url), actor="bench")
    await admin.create_environment("bench")
    doc = realistic_dataset(n_flags=n_flags, n_segments=max(1, n_flags // 100), seed=5)
    t0 = time.perf_counter()
    await admin.import_items("bench", doc)
    import_s = time.perf_counter() - t0

    cold, compiled = [], []
    for _ in range(5):
        sync = Sync(storage_for(url))
        t0 = time.perf_counter()
        await sync.resync("bench")  # ready: every flag loaded, headers parsed, bodies compiling
        cold.append(time.perf_counter() - t0)
        assert sync._warmer is not None
        await sync._warmer  # every flag body compiled (in the background, between requests)
        compiled.append(time.perf_counter() - t0)
        await sync.storage.close()

    applied = asyncio.Event()

    def on_change(env: str, changes: list[Change]) -> None:
        applied.set()

    sync = Sync(storage_for(url), on_change=on_change)
    task = asyncio.create_task(sync.run())
    await sync.state.loaded.wait()
    if sync._warmer is not None:
        await sync._warmer  # measure steady state, not the post-load background compile
    latencies = []
    key = next(iter(doc["flags"]))
    for i in range(n_writes):
        applied.clear()
        t0 = time.perf_counter()
        await admin.toggle("bench", key, i % 2 == 1)
        await applied.wait()
        latencies.append((time.perf_counter() - t0) * 1000)
    task.cancel()
    await sync.storage.close()
    await admin.storage.close()
    return {
        "machine": {"cpu": _cpu()},
        "date": time.strftime("%Y-%m-%d"),
        "flags": n_flags,
        "import_seconds": round(import_s, 3),
        "cold_start_seconds": _stats(cold),
        "all_bodies_compiled_seconds": _stats(compiled),
        "write_to_applied_ms": {
            "writes": n_writes,
            "median": round(statistics.median(latencies), 3),
            "p90": _pct(latencies, 0.9),
            "p99": _pct(latencies, 0.99),
            "max": round(max(latencies), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flags", type=int, default=10_000)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            result = asyncio.run(_run(args.flags, args.writes, server.url))
        finally:
            server.stop()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    c, w = result["cold_start_seconds"], result["write_to_applied_ms"]
    print(f"{result['machine']['cpu']}: {result['flags']} flags")
    print(f"import through the write path: {result['import_seconds']} s")
    b = result["all_bodies_compiled_seconds"]
    print(f"cold start (load, ready):      median {c['median']} s, max {c['max']} s")
    print(f"every flag body compiled:      median {b['median']} s, max {b['max']} s (in the background)")
    print(f"write -> applied ({w['writes']} toggles): median {w['median']} ms, p90 {w['p90']} ms, p99 {w['p99']} ms")


if __name__ == "__main__":
    main()
