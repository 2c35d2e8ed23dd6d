"""The propagation plot, on a synthetic report: log axis with round ticks, the marks, a line per
kind, a box per flip, the run's parameters in the title; and the files it writes."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from relay.loadtest import plot
from tests.loadtest.synthetic import synthetic_report


def _texts(fig: Any) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title(loc="left") for ax in fig.axes]


def test_the_latency_axis_is_logarithmic_with_round_ticks_and_a_grid() -> None:
    fig = plot.figure(synthetic_report())
    distribution, per_flip = fig.axes
    assert distribution.get_xscale() == per_flip.get_xscale() == "log"
    assert distribution.get_shared_x_axes().joined(distribution, per_flip)
    labels = [t.get_text() for t in per_flip.get_xticklabels()]
    assert labels == ["1", "2", "5", "10", "20", "50", "100"], labels
    assert all(line.get_visible() for line in distribution.get_xgridlines())
    assert all(line.get_visible() for line in distribution.get_ygridlines())
    assert [t.get_text() for t in distribution.get_yticklabels()][:4] == ["0 %", "50 %", "75 %", "90 %"]


def test_p50_p90_p99_and_max_are_marked_with_their_values() -> None:
    report = synthetic_report()
    texts = _texts(plot.figure(report))
    for name, value in (("p50", report.p50_ms), ("p90", report.p90_ms), ("p99", report.p99_ms), ("max", report.max_ms)):
        assert f"{name} {value:.3g} ms" in texts, (name, texts)


def test_a_mixed_run_has_a_line_per_kind_and_a_single_kind_run_one() -> None:
    mixed = plot.figure(synthetic_report()).axes[0].get_legend()
    assert [t.get_text().split(":")[0] for t in mixed.get_texts()] == ["all", "client", "server"]
    single = plot.figure(synthetic_report(("server",))).axes[0].get_legend()
    assert [t.get_text().split(":")[0] for t in single.get_texts()] == ["server"]


def test_each_flip_has_its_own_row_so_a_slow_first_flip_stands_out() -> None:
    report = synthetic_report(("server",))
    per_flip = plot.figure(report).axes[1]
    assert [t.get_text() for t in per_flip.get_yticklabels()] == [f"flip {i}" for i in range(1, 6)]
    assert f"p99 {report.per_flip[0]['p99_ms']:.3g} · max {report.per_flip[0]['max_ms']:.3g} ms" in _texts(
        plot.figure(report)
    )
    boxes = [p for p in per_flip.patches]  # one box per flip
    assert len(boxes) == 5
    first, second = (b.get_path().get_extents().x0 for b in boxes[:2])
    assert first > 10 * second  # flip 1's box starts far to the right of flip 2's


def test_the_title_names_the_run() -> None:
    fig = plot.figure(synthetic_report())
    title = fig.get_suptitle() + "\n" + fig.axes[0].get_title(loc="left")
    for part in ("40 streams (20 client, 20 server)", "5 flips", "http://127.0.0.1:8030", "env production",
                 "0.3 s apart", "2026-12-07 23:58 UTC", "correctness OK"):  # fmt: skip
        assert part in title, (part, title)


def test_png_html_and_svg_files(tmp_path: Path) -> None:
    report = synthetic_report()
    for name in ("p.png", "p.html", "p.svg"):
        plot.write(report, tmp_path / name)
    png = (tmp_path / "p.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24])[0] == 2000  # 10 in at 2x
    assert len(png) < 300_000
    page = (tmp_path / "p.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") == 1 and "<script" not in page
    assert "<?xml" not in page and "http://127.0.0.1:8030" in page and "flip 5 (v14)" in page
    assert (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="written as"):
        plot.write(report, tmp_path / "p.pdf")


def test_samples_at_or_below_zero_are_drawn_at_the_left_end_of_the_log_axis() -> None:
    report = synthetic_report(("server",), slow_first=0.0)
    report.latencies_ms[0] = -0.08  # two subscribers woken by one PUBLISH: either may run first
    report.deliveries[0]["ms"] = 0.0
    distribution = plot.figure(report).axes[0]
    lo, hi = distribution.get_xlim()
    assert 0 < lo < min(v for v in report.latencies_ms if v > 0) and hi >= report.max_ms
    assert distribution.get_lines()[0].get_xdata()[0] == lo
