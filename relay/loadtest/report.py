"""Propagation results for people: a text summary with a histogram, and an HTML plot (inline SVG,
no plotting library needed)."""

from __future__ import annotations

import html
from pathlib import Path

from relay.loadtest.propagation import Report


def text(report: Report) -> str:
    lines = [
        f"{report.connections} connections ({report.plan['kind']}), {report.flips} flips, {report.samples} samples",
        f"commit -> event: p50 {report.p50_ms} ms  p90 {report.p90_ms} ms  p99 {report.p99_ms} ms  "
        f"max {report.max_ms} ms  mean {report.mean_ms} ms",
        f"correctness: missing {report.missing}, out of order {report.out_of_order}, failed connections {report.errors}"
        + ("  OK" if report.correct else "  NOT OK"),
    ]
    peak = max((c for _, c in report.histogram), default=0) or 1
    previous = 0.0
    for bound, count in report.histogram:
        label = f"{previous:g}-{bound:g} ms" if bound != float("inf") else f">{previous:g} ms"
        lines.append(f"  {label:>14} {count:>8} {'#' * round(40 * count / peak)}")
        previous = bound
    lines.append(f"per flip (version: p50 / p99 / max ms; median of the flips' p99 {report.flip_p99_median_ms} ms):")
    lines += [f"  {f['version']}: {f['p50_ms']} / {f['p99_ms']} / {f['max_ms']}" for f in report.per_flip]
    return "\n".join(lines)


def plot(report: Report, path: str | Path) -> None:
    """A latency CDF as a self-contained HTML page."""
    values = report.latencies_ms
    width, height, pad = 720, 360, 50
    top = max(values) if values else 1.0
    points = []
    for i, v in enumerate(values):
        x = pad + (width - 2 * pad) * (v / top)
        y = height - pad - (height - 2 * pad) * ((i + 1) / len(values))
        points.append(f"{x:.1f},{y:.1f}")
    ticks = "".join(
        f'<text x="{pad + (width - 2 * pad) * f:.0f}" y="{height - pad + 18}" font-size="11" text-anchor="middle">'
        f"{top * f:.1f}</text>"
        for f in (0, 0.25, 0.5, 0.75, 1)
    )
    title = html.escape(
        f"relay propagation: {report.connections} {report.plan['kind']} connections, {report.flips} flips — "
        f"p50 {report.p50_ms} ms, p99 {report.p99_ms} ms, max {report.max_ms} ms"
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>'
        f'<polyline fill="none" stroke="#c0392b" stroke-width="2" points="{" ".join(points)}"/>'
        f"{ticks}"
        f'<text x="{width / 2}" y="{height - 10}" font-size="12" text-anchor="middle">ms from commit to event</text>'
        f'<text x="14" y="{height / 2}" font-size="12" transform="rotate(-90 14 {height / 2})" '
        f'text-anchor="middle">fraction of deliveries</text></svg>'
    )
    page = f"<!doctype html><meta charset='utf-8'><title>{title}</title><h3>{title}</h3>{svg}"
    Path(path).write_text(page)
