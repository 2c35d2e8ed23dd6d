"""A propagation report made up in memory, as a run would make it: for the plot and report tests."""

from __future__ import annotations

import random

from relay.loadtest import results
from relay.loadtest.results import Report, StreamRecord

PLAN = {
    "target": "http://127.0.0.1:8030",
    "env": "production",
    "kind": "mix",
    "connections": 40,
    "flips": 5,
    "interval": 0.3,
    "timeout": 30.0,
}


def synthetic_report(kinds: tuple[str, ...] = ("server", "client"), *, slow_first: float = 80.0) -> Report:
    """40 streams of `kinds` (alternating), 5 flips of ~2-9 ms, the first `slow_first` ms later."""
    rng = random.Random(1)
    versions = [10, 11, 12, 13, 14]
    commits = {v: 100.0 + i for i, v in enumerate(versions)}
    streams = []
    for index in range(40):
        kind = kinds[index % len(kinds)]
        base = 2.0 if kind == "server" else 4.0
        arrivals = []
        for i, v in enumerate(versions):
            ms = base + rng.expovariate(1 / 1.5) + (slow_first if i == 0 else 0.0)
            arrivals.append((v, commits[v] + ms / 1000))
        streams.append(StreamRecord(index, kind, arrivals))
    plan = PLAN | {"kind": kinds[0] if len(kinds) == 1 else "mix"}
    return results.build(plan, streams, versions, commits, started_at="2026-12-07T23:58:44+00:00")
