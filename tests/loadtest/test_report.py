"""Propagation results: no sample means an error, not `nan`; the JSON report holds every sample
with its flip and connection, is strict JSON, and draws again with `relay loadtest plot`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from relay.cli import main
from relay.loadtest import report, results
from relay.loadtest.results import StreamRecord
from tests.loadtest.synthetic import PLAN, synthetic_report


def _strict(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


def test_no_sample_at_all_is_an_error_not_nan() -> None:
    streams = [StreamRecord(i, "server", [], failed=True) for i in range(3)]
    with pytest.raises(results.NoSamples, match="none of the 3 streams received any of the 2 flips"):
        results.build(PLAN, streams, [5, 6], {5: 1.0, 6: 2.0})


def test_a_flip_nobody_got_has_no_figures_and_prints_none() -> None:
    streams = [StreamRecord(i, "server", [(5, 1.002)]) for i in range(4)]
    built = results.build(PLAN, streams, [5, 6], {5: 1.0, 6: 2.0})
    assert built.per_flip[1] == {"flip": 2, "version": 6, "samples": 0, "p50_ms": None, "p90_ms": None,
                                 "p99_ms": None, "max_ms": None}  # fmt: skip
    assert built.missing == 4 and not built.correct and built.flip_p99_median_ms == 2.0
    assert len(built.missed) == 4 and built.missed[0] == {"flip": 2, "connection": 0, "kind": "server"}
    printed = report.text(built)
    assert "nan" not in printed and "  6: — / — / —" in printed
    json.loads(report.to_json(built), parse_constant=_strict)


def test_the_json_report_has_every_sample_and_reads_back() -> None:
    built = synthetic_report()
    raw = report.to_json(built)
    data = json.loads(raw, parse_constant=_strict)
    assert data["samples"] == len(data["deliveries"]) == 200 and data["histogram"][-1] == [None, 0]
    assert data["deliveries"][0] == {"flip": 1, "connection": 0, "kind": "server", "ms": built.deliveries[0]["ms"]}
    assert raw.count('\n    {"flip"') == 200 + 5  # the samples one a line (and the per-flip rows)
    again = report.from_json(raw)
    assert again == built


def test_relay_loadtest_plot_draws_a_saved_report(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(report.to_json(synthetic_report()))
    done = CliRunner().invoke(main, ["loadtest", "plot", str(tmp_path / "run.json"), str(tmp_path / "run.png")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "run.png").read_bytes()[:4] == b"\x89PNG"
    old = json.loads(report.to_json(synthetic_report())) | {"deliveries": []}  # as an older relay wrote it
    (tmp_path / "old.json").write_text(json.dumps(old))
    done = CliRunner().invoke(main, ["loadtest", "plot", str(tmp_path / "old.json"), str(tmp_path / "old.png")])
    assert done.exit_code == 2 and "no per-sample rows" in done.output
    done = CliRunner().invoke(main, ["loadtest", "plot", str(tmp_path / "run.json"), str(tmp_path / "run.pdf")])
    assert done.exit_code == 2 and "written as .html, .png, .svg" in done.output
