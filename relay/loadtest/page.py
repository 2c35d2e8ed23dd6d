"""The HTML page around the propagation plot: the SVG inline and the figures as tables.

Self-contained: no script, no stylesheet or font fetched; it opens from disk, in a mail or an
archive, and prints as it shows.
"""

from __future__ import annotations

import html
import re
from typing import Any

from relay.loadtest.results import Report, streams_label

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 24px auto;
       max-width: 1040px; padding: 0 16px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 6px; }
.meta { color: #555; margin: 0 0 12px; } .bad { color: #c0392b; font-weight: bold; }
svg { width: 100%; height: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #ddd; }
th:first-child, td:first-child { text-align: left; }
"""


def html_page(report: Report, svg: str) -> str:
    """The page: title and parameters, the plot, the run's figures, per kind and per flip."""
    plan = report.plan
    title = f"Kill-switch propagation: {streams_label(report)}, {report.flips} flips"
    meta = "  ·  ".join(
        html.escape(str(p))
        for p in (
            plan.get("target", ""),
            f"env {plan.get('env', '')}",
            f"interval {plan.get('interval', 0):g} s",
            f"timeout {plan.get('timeout', 0):g} s",
            report.started_at,
        )
        if p
    )
    verdict = "OK" if report.correct else '<span class="bad">NOT OK</span>'
    correctness = (
        f"Correctness: missing {report.missing}, out of order {report.out_of_order}, "
        f"failed connections {report.errors} — {verdict}."
    )
    if report.not_connected:
        failures = ", ".join(f"{html.escape(k)} ({v})" for k, v in report.connect_failures.items())
        correctness += f" Not connected (left out with --allow-partial): {report.not_connected}: {failures}."
    overall = {"samples": report.samples, "p50_ms": report.p50_ms, "p90_ms": report.p90_ms, "p99_ms": report.p99_ms,
               "max_ms": report.max_ms, "mean_ms": report.mean_ms}  # fmt: skip
    kinds = [("all", overall)] + (list(report.per_kind.items()) if len(report.per_kind) > 1 else [])
    flips = [(f"flip {row['flip']} (v{row['version']})", row) for row in report.per_flip]
    figure_columns = ["samples", "p50_ms", "p90_ms", "p99_ms", "max_ms"]
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>\n"
        f'<h1>{html.escape(title)}</h1>\n<p class="meta">{meta}</p>\n'
        f"{_inline(svg)}\n<p>{correctness}</p>\n"
        f"<h2>Commit → event, ms</h2>\n{_table(kinds, [*figure_columns, 'mean_ms'])}\n"
        f"<p>Median of the flips' p99: {report.flip_p99_median_ms} ms (one slow flip cannot move it).</p>\n"
        f"<h2>Per flip, ms</h2>\n{_table(flips, figure_columns)}\n"
        "</body></html>\n"
    )


def _inline(svg: str) -> str:
    """matplotlib's SVG document as an element: without its XML declaration and doctype."""
    return re.sub(r"^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", "", svg, flags=re.IGNORECASE).strip()


def _table(rows: list[tuple[str, dict[str, Any]]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c.removesuffix('_ms'))}</th>" for c in ["", *columns])
    body = "".join(
        f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>"
        for name, row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(f"{value:g}" if isinstance(value, float) else str(value))
