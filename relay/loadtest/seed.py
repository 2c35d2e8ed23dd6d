"""A synthetic but realistic ruleset for capacity tests, written through the normal write path.

Flags get 0–6 rules of 1–3 clauses drawn from every operator, percentage rollouts and experiments,
targets, prerequisites on earlier flags, and segment matches; segments get include lists and
weighted rules. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from typing import Any

CLAUSES: list[tuple[str | None, str, str, list[Any]]] = [
    ("user", "email", "endsWith", ["@example.com", "@test.org"]),
    ("user", "/address/country", "in", ["DE", "FR", "US"]),
    (None, "plan", "in", ["pro", "enterprise"]),
    ("user", "email", "startsWith", ["admin"]),
    ("user", "name", "contains", ["Smith"]),
    ("user", "email", "matches", [r"^[a-m].*@example\.com$"]),
    ("user", "age", "greaterThanOrEqual", [18]),
    ("user", "age", "lessThan", [65]),
    ("user", "score", "lessThanOrEqual", [500]),
    ("user", "score", "greaterThan", [100]),
    ("user", "created", "before", ["2024-01-01T00:00:00Z"]),
    ("user", "created", "after", [1577836800000]),
    ("user", "appVersion", "semVerGreaterThan", ["2.0.0"]),
    ("user", "appVersion", "semVerLessThan", ["3.0.0"]),
    ("user", "appVersion", "semVerEqual", ["2.5.0"]),
    ("org", "key", "in", ["acme", "globex"]),
    (None, "kind", "in", ["org"]),
]


def _clause(rng: random.Random, segments: list[str]) -> dict[str, Any]:
    if segments and rng.random() < 0.15:
        return {"attribute": "", "op": "segmentMatch", "values": [rng.choice(segments)], "negate": False}
    kind, attr, op, values = rng.choice(CLAUSES)
    clause: dict[str, Any] = {"attribute": attr, "op": op, "values": values, "negate": rng.random() < 0.1}
    if kind is not None:
        clause["contextKind"] = kind
    return clause


def _rollout(rng: random.Random, n: int, experiment: bool = False) -> dict[str, Any]:
    cuts = sorted(rng.sample(range(1, 100000), n - 1))
    weights = [b - a for a, b in zip([0, *cuts], [*cuts, 100000], strict=True)]
    rollout: dict[str, Any] = {"variations": [{"variation": i, "weight": w} for i, w in enumerate(weights)]}
    if experiment:
        rollout |= {"kind": "experiment", "seed": rng.randrange(1000)}
    return {"rollout": rollout}


def flag(rng: random.Random, key: str, earlier: list[str], segments: list[str]) -> dict[str, Any]:
    n = rng.choice([2, 2, 2, 3])
    variations: list[Any] = [False, True] if n == 2 else ["a", "b", "c"]
    rules = []
    for i in range(rng.choice([0, 0, 1, 1, 2, 3, 6])):
        outcome = _rollout(rng, n) if rng.random() < 0.3 else {"variation": rng.randrange(n)}
        clauses = [_clause(rng, segments) for _ in range(rng.randint(1, 3))]
        rules.append({"id": f"{key}-r{i}", "clauses": clauses, **outcome})
    fallthrough = _rollout(rng, n, experiment=rng.random() < 0.1) if rng.random() < 0.4 else {"variation": 0}
    prereqs = [{"key": p, "variation": 1} for p in rng.sample(earlier, min(len(earlier), rng.choice([0, 0, 0, 1])))]
    return {
        "key": key,
        "on": rng.random() < 0.9,
        "variations": variations,
        "offVariation": 0,
        "salt": key,
        "targets": [{"variation": 1, "values": [f"user-{rng.randrange(10000)}" for _ in range(rng.choice([0, 3]))]}],
        "rules": rules,
        "fallthrough": fallthrough,
        "prerequisites": [p for p in prereqs if variations == [False, True]],
        "clientSideAvailability": {"usingEnvironmentId": rng.random() < 0.7, "usingMobileKey": True},
    }


def segment(rng: random.Random, key: str) -> dict[str, Any]:
    return {
        "key": key,
        "included": [f"user-{rng.randrange(10000)}" for _ in range(rng.randint(0, 50))],
        "excluded": [],
        "includedContexts": [{"contextKind": "org", "values": ["acme"]}] if rng.random() < 0.3 else [],
        "rules": [{"id": f"{key}-r0", "clauses": [_clause(rng, [])], "weight": rng.randrange(100000)}],
        "salt": key,
    }


def ruleset(flags: int, segments: int, seed: int = 0) -> dict[str, Any]:
    """LaunchDarkly's `{"flags", "segments"}` document, valid for the strict write path."""
    rng = random.Random(seed)
    seg_keys = [f"loadtest-segment-{i}" for i in range(segments)]
    out_flags: dict[str, Any] = {}
    bool_flags: list[str] = []
    for i in range(flags):
        key = f"loadtest-flag-{i}"
        out_flags[key] = flag(rng, key, bool_flags[-50:], seg_keys)
        if out_flags[key]["variations"] == [False, True]:
            bool_flags.append(key)
    return {"flags": out_flags, "segments": {k: segment(rng, k) for k in seg_keys}}
