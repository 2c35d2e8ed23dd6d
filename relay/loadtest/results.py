"""Propagation results: every delivery with its flip, connection and stream kind, and the figures
over them — overall, per flip and per kind.

A report is only made from at least one sample: with none there is nothing to take a percentile
of, and the tool says so (`NoSamples`) instead of printing `nan`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, fields
from typing import Any

BOUNDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, float("inf")]  # histogram, ms


class NoSamples(Exception):
    """The flips happened but no stream received any of them."""


@dataclass
class StreamRecord:
    """One measured stream: its number in the run (client streams use context `index % contexts`),
    its kind, the (version, arrival time) of each change it got, and whether it failed."""

    index: int
    kind: str
    arrivals: list[tuple[int, float]]
    failed: bool = False


@dataclass
class Report:
    plan: dict[str, Any]
    connections: int  # streams measured: connected and had their first event before the first flip
    flips: int
    samples: int
    missing: int
    out_of_order: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    histogram: list[tuple[float, int]] = field(default_factory=list)  # (upper bound ms, count)
    latencies_ms: list[float] = field(default_factory=list)  # every sample, sorted
    # One row per flip, in order: {"flip", "version", "samples", "p50_ms", "p90_ms", "p99_ms", "max_ms"}
    # (figures None for a flip nobody got). A tail made by one slow flip (a pause) and one that
    # every flip shares (slow fan-out) look alike overall.
    per_flip: list[dict[str, Any]] = field(default_factory=list)
    flip_p99_median_ms: float = 0.0  # the typical flip's p99: one odd flip cannot move it
    started_at: str = ""  # UTC, ISO 8601
    # Per stream kind ("server", "client"): {"streams", "samples", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"}.
    per_kind: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Streams left out with --allow-partial, and why: {"401 unauthorized": 50}.
    not_connected: int = 0
    connect_failures: dict[str, int] = field(default_factory=dict)
    # Every sample: {"flip": 1.., "connection": 0.., "kind", "ms"}; and every (flip, stream) with none.
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)
    # From the moment each flip was asked for (write path called / API request sent): to the event at
    # each stream (what a caller sees), and to the commit (the caller's path before Redis). Figures as
    # in NO_FIGURES; empty in reports from before they were measured.
    end_to_end: dict[str, Any] = field(default_factory=dict)
    request_to_commit: dict[str, Any] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        return self.missing == 0 and self.out_of_order == 0 and self.errors == 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """A report read back from its JSON (`--report`); unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def streams_label(report: Report) -> str:
    """ "1,000 server streams", or "1,000 streams (500 client, 500 server)" when the run mixed kinds."""
    kinds = {kind: k["streams"] for kind, k in report.per_kind.items()}
    if len(kinds) == 1:
        return f"{report.connections:,} {next(iter(kinds))} streams"
    return f"{report.connections:,} streams (" + ", ".join(f"{n:,} {kind}" for kind, n in kinds.items()) + ")"


def percentile(sorted_values: list[float], p: float) -> float:
    """The value at fraction `p` of `sorted_values` (nearest rank); the list must not be empty."""
    return sorted_values[min(len(sorted_values) - 1, round(p * (len(sorted_values) - 1)))]


NO_FIGURES: dict[str, float | None] = {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}


def figures(values: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max of sorted, non-empty `values`, rounded to µs."""
    return {
        "p50_ms": round(percentile(values, 0.50), 3),
        "p90_ms": round(percentile(values, 0.90), 3),
        "p99_ms": round(percentile(values, 0.99), 3),
        "max_ms": round(values[-1], 3),
    }


def histogram(values: list[float]) -> list[tuple[float, int]]:
    counts = [0] * len(BOUNDS)
    for v in values:
        counts[next(i for i, b in enumerate(BOUNDS) if v <= b)] += 1
    return list(zip(BOUNDS, counts, strict=True))


def build(
    plan: dict[str, Any],
    streams: list[StreamRecord],
    versions: list[int],
    commits: dict[int, float],
    *,
    started_at: str = "",
    connect_failures: dict[str, int] | None = None,
    sent: dict[int, float] | None = None,
) -> Report:
    """The report over `streams` for the flips that made `versions`, timed from `commits`."""
    flip_of = {v: i + 1 for i, v in enumerate(versions)}
    sent = sent or {}
    deliveries: list[dict[str, Any]] = []
    end_to_end: list[float] = []
    missed: list[dict[str, Any]] = []
    out_of_order = 0
    for stream in streams:
        seen = [v for v, _ in stream.arrivals]
        if seen != sorted(seen):
            out_of_order += 1
        times = dict(stream.arrivals)
        for v, flip in flip_of.items():
            row: dict[str, Any] = {"flip": flip, "connection": stream.index, "kind": stream.kind}
            if v in times and v in commits:
                deliveries.append(row | {"ms": round((times[v] - commits[v]) * 1000, 3)})
                if v in sent:
                    end_to_end.append((times[v] - sent[v]) * 1000)
            else:
                missed.append(row)
    if not deliveries:
        raise NoSamples(
            f"no samples: none of the {len(streams)} streams received any of the {len(versions)} flips "
            f"({sum(s.failed for s in streams)} of the streams failed while flipping)"
        )
    values = sorted(d["ms"] for d in deliveries)
    per_flip = []
    for v, flip in flip_of.items():
        flip_values = sorted(d["ms"] for d in deliveries if d["flip"] == flip)
        row = {"flip": flip, "version": v, "samples": len(flip_values)}
        row |= figures(flip_values) if flip_values else NO_FIGURES
        if v in sent and v in commits:  # how long the caller's path took before the commit, this flip
            row["asked_to_commit_ms"] = round((commits[v] - sent[v]) * 1000, 3)
        per_flip.append(row)
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({s.kind for s in streams}):
        kind_values = sorted(d["ms"] for d in deliveries if d["kind"] == kind)
        per_kind[kind] = {"streams": sum(s.kind == kind for s in streams), "samples": len(kind_values)}
        per_kind[kind] |= figures(kind_values) if kind_values else NO_FIGURES
        per_kind[kind]["mean_ms"] = round(statistics.fmean(kind_values), 3) if kind_values else None
    overall = figures(values)
    requests = sorted((commits[v] - sent[v]) * 1000 for v in versions if v in sent and v in commits)
    failures = connect_failures or {}
    return Report(
        plan=plan,
        connections=len(streams),
        flips=len(versions),
        samples=len(values),
        missing=len(missed),
        out_of_order=out_of_order,
        errors=sum(1 for s in streams if s.failed and not s.arrivals),
        p50_ms=overall["p50_ms"],
        p90_ms=overall["p90_ms"],
        p99_ms=overall["p99_ms"],
        max_ms=overall["max_ms"],
        mean_ms=round(statistics.fmean(values), 3),
        histogram=histogram(values),
        latencies_ms=values,
        per_flip=per_flip,
        flip_p99_median_ms=round(statistics.median(f["p99_ms"] for f in per_flip if f["samples"]), 3),
        started_at=started_at,
        per_kind=per_kind,
        not_connected=sum(failures.values()),
        connect_failures=dict(failures),
        deliveries=deliveries,
        missed=missed,
        end_to_end=figures(sorted(end_to_end)) if end_to_end else {},
        request_to_commit=figures(requests) if requests else {},
    )
