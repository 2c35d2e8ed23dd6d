"""LoopHistogram: the same exposition as prometheus_client's Histogram for the same observations."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from relay.server.histogram import LoopHistogram

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


def _lines(registry: CollectorRegistry) -> list[str]:
    # Histogram also exports a `_created` timestamp per label set; LoopHistogram does not.
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def test_exposition_matches_prometheus_client_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("t_seconds", "help text", ["route"], BUCKETS, ours)
    reference = Histogram("t_seconds", "help text", ["route"], registry=theirs, buckets=BUCKETS)
    rng = random.Random(7)
    # Values on the bounds too: a bucket counts observations <= its bound.
    values = [rng.choice([*BUCKETS, 0.0, 0.2, 5.0, rng.uniform(0, 0.12)]) for _ in range(2000)]
    for i, v in enumerate(values):
        route = ("evalx", "ofrep")[i % 2]
        loop.labels(route).observe(v)
        reference.labels(route).observe(v)
    loop.labels("ofrep_bulk")  # a label set with no observations is exported too
    reference.labels("ofrep_bulk")
    assert _lines(ours) == _lines(theirs)
    assert 'route="evalx"' in "".join(_lines(ours))


def test_bad_arguments_are_refused() -> None:
    registry = CollectorRegistry()
    with pytest.raises(ValueError, match="increasing"):
        LoopHistogram("a", "h", [], (0.1, 0.01), registry)
    h = LoopHistogram("b", "h", ["route"], BUCKETS, registry)
    with pytest.raises(ValueError, match="label values"):
        h.labels("x", "y")
