"""The propagation plot, for a report: PNG (2x), SVG, or an HTML page with the SVG inline.

Two panels share one log-scale latency axis with round ticks (… 1, 2, 5, 10, 20, 50 ms …):

- the distribution of commit → event latency on a percentile axis (0, 50, 90, 99, 99.9 % … evenly
  spaced, so the tail gets room a linear CDF would squash into its top pixel), one line per stream
  kind when a run mixes them, with p50 / p90 / p99 / max marked and labelled;
- one box per flip (p25-p75, the median, whiskers to p1 and p99, a dot at the max), so one slow
  flip — often the first — stands apart from a tail every flip shares.

The title holds the run's parameters. matplotlib (the `loadtest` extra) is imported only here,
and only its object API (no pyplot state), rendering with its own Agg and SVG backends.
"""

from __future__ import annotations

import io
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from relay.loadtest.page import html_page
from relay.loadtest.results import Report, percentile, streams_label

SUFFIXES = (".html", ".png", ".svg")
PNG_DPI = 200  # 2x matplotlib's 100 dpi: sharp on high-density screens and in printed reports
KIND_COLOURS = {"all": "#222222", "server": "#1f6fb4", "client": "#d9730d"}
MARKS = (("p50", 0.50, "#2a9d55"), ("p90", 0.90, "#b8860b"), ("p99", 0.99, "#c0392b"), ("max", 1.0, "#6c3483"))
# The percentile axis' ticks: (fraction, label).
NINES = [(0.0, "0"), (0.5, "50"), (0.75, "75"), (0.9, "90"), (0.99, "99"), (0.999, "99.9"), (0.9999, "99.99")]
NINES += [(0.99999, "99.999"), (0.999999, "99.9999")]
LABEL_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}  # over lines
MAX_FLIP_LABELS = 30  # rows of the per-flip panel that get a label; the panel stops growing there
FLOOR_MS = 0.01  # the log axis starts at most a step below this; samples left of its start are drawn on it


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def require() -> None:
    """Fail early, before any load is generated, when plots cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotUnavailable(
            "plots need matplotlib: pip install 'relay[loadtest]' (or pip install matplotlib)"
        ) from None


def write(report: Report, path: str | Path) -> None:
    """The plot as `path`'s suffix says: .png, .svg or .html."""
    path = Path(path)
    suffix = path.suffix.lower()
    fig = figure(report)
    if suffix == ".png":
        path.write_bytes(_png(fig))
    elif suffix == ".svg":
        fig.savefig(path, format="svg", metadata={"Date": None})
    elif suffix in (".html", ".htm"):
        svg = io.StringIO()
        fig.savefig(svg, format="svg", metadata={"Date": None})
        path.write_text(html_page(report, svg.getvalue()))
    else:
        raise ValueError(f"{path}: the plot is written as {', '.join(SUFFIXES)}")


def _png(fig: Any) -> bytes:
    """The PNG at 2x, in a 256-colour palette: a line plot needs no more, and is a third the size."""
    from PIL import Image  # matplotlib's own dependency

    rendered, out = io.BytesIO(), io.BytesIO()
    fig.savefig(rendered, format="png", dpi=PNG_DPI, metadata={"Software": None})
    image = Image.open(rendered).convert("RGB")
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, "png", optimize=True)
    return out.getvalue()


def figure(report: Report) -> Any:
    """The two-panel matplotlib Figure for `report`."""
    from matplotlib.figure import Figure

    by_kind = _by_kind(report)
    flips = max(report.flips, 1)
    panel = 0.8 + min(flips, MAX_FLIP_LABELS) * 0.22  # inches
    fig = Figure(figsize=(10, 4.2 + panel), layout="constrained")
    grid = fig.add_gridspec(2, 1, height_ratios=[4.2, panel])
    dist = fig.add_subplot(grid[0])
    per_flip = fig.add_subplot(grid[1], sharex=dist)
    lo, hi = _limits(report.latencies_ms)
    _distribution(dist, report, by_kind, lo)
    _per_flip(per_flip, report, by_kind, lo)
    for ax in (dist, per_flip):
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.grid(True, which="major", color="#d0d0d0", linewidth=0.8)
        ax.grid(True, which="minor", axis="x", color="#ececec", linewidth=0.5)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    _round_ticks(per_flip, lo, hi)
    dist.tick_params(labelbottom=False)
    per_flip.set_xlabel("milliseconds from the commit in Redis to the event's arrival (log scale)")
    fig.suptitle(_title(report), x=0.01, ha="left", fontsize=13, fontweight="bold")
    return fig


def _by_kind(report: Report) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for row in report.deliveries:
        kinds.setdefault(row["kind"], []).append(row)
    return dict(sorted(kinds.items()))


def _title(report: Report) -> str:
    return f"Kill-switch propagation, commit → event: {streams_label(report)}, {report.flips} flips"


def _subtitle(report: Report) -> str:
    """The run's parameters, then its verdict."""
    plan = report.plan
    when = report.started_at
    if when:
        when = datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M UTC")
    parts = [plan.get("target", ""), f"env {plan.get('env', '')}", f"flips {plan.get('interval', 0):g} s apart", when]
    if report.not_connected:
        parts.append(f"{report.not_connected} streams did not connect (left out)")
    verdict = "OK" if report.correct else "NOT OK"
    return "   ·   ".join(p for p in parts if p) + (
        f"\nmedian of the flips' p99 {_num(report.flip_p99_median_ms)} ms   ·   correctness {verdict}: missing "
        f"{report.missing}, out of order {report.out_of_order}, failed {report.errors}"
    )


def _limits(values: list[float]) -> tuple[float, float]:
    """Round 1-2-5 values just outside the samples (positive: the axis is logarithmic)."""
    positive = [v for v in values if v > 0] or [1.0]
    low, high = max(min(positive), FLOOR_MS), max(max(positive), 1.0)
    steps = _steps(FLOOR_MS / 10, high * 10)
    return max(s for s in steps if s <= low * 0.9), min(s for s in steps if s >= high * 1.1)


def _steps(lo: float, hi: float) -> list[float]:
    out, decade = [], 10.0 ** math.floor(math.log10(lo))
    while decade <= hi * 10:
        out += [round(decade * m, 10) for m in (1, 2, 5)]
        decade *= 10
    return [s for s in out if lo <= s <= hi]


def _round_ticks(ax: Any, lo: float, hi: float) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ticks = _steps(lo, hi)
    if len(ticks) > 13:  # more than four decades: 1, 10, 100 … only
        ticks = [t for t in ticks if math.log10(t) == round(math.log10(t))]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _ms(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g} s"
    return f"{value:g}"


def _num(ms: float) -> str:
    """3 significant digits, without exponents: 0.853, 6.07, 17.8, 245, 1234."""
    return f"{ms:.3g}" if abs(ms) < 1000 else f"{ms:.0f}"


def _nines(q: float) -> float:
    """The percentile axis: 0 → 0, 90 % → 1, 99 % → 2, 99.9 % → 3."""
    return -math.log10(1 - q)


def _curve(values: list[float], lo: float) -> tuple[list[float], list[float]]:
    """(latency, percentile-axis) points of sorted `values`, thinned to ~800 evenly on that axis."""
    n = len(values)
    top = _nines((n - 0.5) / n)
    if n <= 800:
        picks = range(n)
    else:
        picks = sorted({min(n - 1, int((1 - 10 ** -(top * k / 800)) * n)) for k in range(801)} | {n - 1})
    return [max(values[i], lo) for i in picks], [_nines((i + 0.5) / n) for i in picks]


def _distribution(ax: Any, report: Report, by_kind: dict[str, list[dict[str, Any]]], lo: float) -> None:
    """The percentile curve(s) and the run's marks; a sample at or below 0 ms (the tool's and the
    node's subscribers are woken by one PUBLISH, in either order) is drawn at the axis' left end."""
    values = report.latencies_ms
    curves = {"all": values}
    if len(by_kind) > 1:
        curves |= {kind: sorted(r["ms"] for r in rows) for kind, rows in by_kind.items()}
    else:  # one kind: its line is the run's
        curves = {next(iter(by_kind), "all"): values}
    for kind, kind_values in curves.items():
        xs, ys = _curve(kind_values, lo)
        p50, p99 = percentile(kind_values, 0.5), percentile(kind_values, 0.99)
        label = f"{kind}: {len(kind_values):,} samples, p50 {_num(p50)} ms, p99 {_num(p99)} ms"
        width, style = (2.2, "-") if kind == "all" or len(curves) == 1 else (1.6, "--")
        ax.plot(xs, ys, style, color=KIND_COLOURS.get(kind, "#555555"), linewidth=width, label=label)
    top = _nines((len(values) - 0.5) / len(values))
    for name, q, colour in MARKS:
        x = values[-1] if q == 1.0 else percentile(values, q)
        y = top if q == 1.0 else _nines(q)
        ax.plot([max(x, lo)], [y], "o", color=colour, markersize=7, zorder=5)
        ax.annotate(f"{name} {_num(x)} ms", (max(x, lo), y), xytext=(8, -3), textcoords="offset points",
                    color=colour, fontsize=10, fontweight="bold", zorder=6, bbox=LABEL_BOX)  # fmt: skip
    ticks = [(q, label) for q, label in NINES if _nines(q) <= top + 0.05] if top > 0 else NINES[:1]
    ax.set_yticks([_nines(q) for q, _ in ticks], [f"{label} %" for _, label in ticks])
    ax.set_ylim(-0.05, top + 0.25)
    ax.set_ylabel("deliveries this fast or faster")
    ax.legend(loc="upper left", fontsize=9, frameon=True, framealpha=0.9)
    ax.set_title(_subtitle(report), loc="left", fontsize=9.5, color="#333333" if report.correct else "#c0392b")


def _per_flip(ax: Any, report: Report, by_kind: dict[str, list[dict[str, Any]]], lo: float) -> None:
    """One row per flip (flip 1 on top), a box per kind in it, and the flip's p99 and max beside."""
    kinds = list(by_kind) if len(by_kind) > 1 else ["all"]
    offsets = {k: (i - (len(kinds) - 1) / 2) * 0.34 for i, k in enumerate(kinds)}
    groups: dict[tuple[str, int], list[float]] = {}
    for row in report.deliveries:
        groups.setdefault((row["kind"] if len(kinds) > 1 else "all", row["flip"]), []).append(max(row["ms"], lo))
    for kind in kinds:
        flips = [flip for flip in range(1, report.flips + 1) if (kind, flip) in groups]
        stats = [_box(sorted(groups[kind, flip])) for flip in flips]
        colour = KIND_COLOURS.get(kind if len(kinds) > 1 else next(iter(by_kind), "all"), "#555555")
        line = {"color": colour}
        ax.bxp(
            stats, positions=[f + offsets[kind] for f in flips], orientation="horizontal",
            widths=0.3 if len(kinds) > 1 else 0.55, patch_artist=True, showfliers=True, whiskerprops=line,
            capprops=line, boxprops={"facecolor": colour + "33", "edgecolor": colour},
            medianprops=line | {"linewidth": 2},
            flierprops={"marker": "o", "markersize": 4, "markerfacecolor": MARKS[3][2], "markeredgecolor": "none"},
        )  # fmt: skip
    every = math.ceil(report.flips / MAX_FLIP_LABELS)  # beyond that many rows, label every n-th
    for row in (r for i, r in enumerate(report.per_flip) if i % every == 0 or not r["samples"]):  # a miss always
        text = f"p99 {_num(row['p99_ms'])} · max {_num(row['max_ms'])} ms" if row["samples"] else "no deliveries"
        ax.annotate(text, (1.0, row["flip"]), xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8,
                    color="#444444" if row["samples"] else MARKS[2][2])  # fmt: skip
    for _, q, colour in MARKS[:3:2]:  # the run's p50 and p99, to read each flip against
        ax.axvline(percentile(report.latencies_ms, q), color=colour, linewidth=1, linestyle=":")
    labelled = range(1, report.flips + 1, every)
    ax.set_yticks(list(labelled), [f"flip {i}" for i in labelled])
    ax.set_ylim(report.flips + 0.6, 0.4)  # flip 1 on top
    ax.set_title(
        "per flip: box p25–p75 and median, whiskers p1–p99, dot max;  dotted lines: the run's p50 and p99",
        loc="left", fontsize=9.5,
    )  # fmt: skip


def _box(values: list[float]) -> dict[str, Any]:
    return {
        "whislo": percentile(values, 0.01),
        "q1": percentile(values, 0.25),
        "med": percentile(values, 0.50),
        "q3": percentile(values, 0.75),
        "whishi": percentile(values, 0.99),
        "fliers": [values[-1]],
    }
