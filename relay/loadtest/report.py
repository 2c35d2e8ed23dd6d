"""Propagation results for people and programs: a text summary with a histogram, and the JSON
report (every sample with its flip, connection and kind). The plot is `plot`'s."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from relay.loadtest.results import Report


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def text(report: Report) -> str:
    streams = f"{report.connections} connections ({report.plan['kind']})"
    if report.not_connected:
        failures = ", ".join(f"{k} ({v})" for k, v in report.connect_failures.items())
        streams += f" + {report.not_connected} not connected, left out (--allow-partial): {failures}"
    lines = [
        f"{streams}, {report.flips} flips, {report.samples} samples",
        f"commit -> event: p50 {report.p50_ms} ms  p90 {report.p90_ms} ms  p99 {report.p99_ms} ms  "
        f"max {report.max_ms} ms  mean {report.mean_ms} ms",
    ]
    if report.end_to_end:
        e2e, req = report.end_to_end, report.request_to_commit
        lines.append(
            f"asked -> event ({report.plan.get('via', 'redis')}): p50 {e2e['p50_ms']} ms  p99 {e2e['p99_ms']} ms  "
            f"max {e2e['max_ms']} ms; asked -> commit p50 {_ms(req.get('p50_ms'))} ms  p99 {_ms(req.get('p99_ms'))} ms"
        )
    if len(report.per_kind) > 1:
        lines += [
            f"  {kind}: {k['streams']} streams, {k['samples']} samples: p50 {_ms(k['p50_ms'])} ms  "
            f"p99 {_ms(k['p99_ms'])} ms  max {_ms(k['max_ms'])} ms"
            for kind, k in report.per_kind.items()
        ]
    lines.append(
        f"correctness: missing {report.missing}, out of order {report.out_of_order}, failed connections {report.errors}"
        + ("  OK" if report.correct else "  NOT OK")
    )
    peak = max((c for _, c in report.histogram), default=0) or 1
    previous = 0.0
    for bound, count in report.histogram:
        label = f"{previous:g}-{bound:g} ms" if bound not in (None, math.inf) else f">{previous:g} ms"
        lines.append(f"  {label:>14} {count:>8} {'#' * round(40 * count / peak)}")
        previous = bound
    lines.append(f"per flip (version: p50 / p99 / max ms; median of the flips' p99 {report.flip_p99_median_ms} ms):")
    lines += [
        f"  {f['version']}: {_ms(f['p50_ms'])} / {_ms(f['p99_ms'])} / {_ms(f['max_ms'])}" for f in report.per_flip
    ]
    return "\n".join(lines)


def to_json(report: Report) -> str:
    """The report as strict JSON (the open histogram bound is null), each list one entry a line:
    100,000 samples stay readable with `grep` and small enough to keep."""
    data: dict[str, Any] = asdict(report)
    data["histogram"] = [[None if b == math.inf else b, n] for b, n in report.histogram]
    parts = []
    for key, value in data.items():
        if isinstance(value, list) and value:
            rows = ",".join("\n    " + json.dumps(v, allow_nan=False, separators=(", ", ": ")) for v in value)
            text = f"[{rows}\n  ]"
        else:
            text = json.dumps(value, indent=2, allow_nan=False).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def from_json(raw: str) -> Report:
    """A report written by `to_json` (or by an older relay, which lacks the per-sample rows)."""
    data = json.loads(raw)
    data["histogram"] = [(math.inf if b is None else b, n) for b, n in data.get("histogram", [])]
    return Report.from_dict(data)
