"""The evaluator-only CLI commands (`relay eval`, `relay validate`)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from relay.cli import main

STUDENT = '{"kind": "user", "key": "zed", "userType": "student", "device": {"platform": "web"}}'


def test_eval_demo_as_json() -> None:
    result = CliRunner().invoke(main, ["eval", "--context", STUDENT, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["student-discount"]["reason"] == {"kind": "RULE_MATCH", "ruleIndex": 0, "ruleId": "students"}
    assert out["pricing-page-experiment"]["reason"]["inExperiment"] is True


def test_eval_table_and_flag_filter() -> None:
    result = CliRunner().invoke(main, ["eval", "--context", STUDENT, "--flag", "checkout-kill-switch"])
    assert result.exit_code == 0
    assert "checkout-kill-switch" in result.output and "new-search" not in result.output


def test_eval_refuses_a_bad_context_with_the_path() -> None:
    result = CliRunner().invoke(main, ["eval", "--context", '{"kind": "user", "key": 5}'])
    assert result.exit_code == 2
    assert "error: key: expected a string, got the integer 5" in result.output


def test_validate(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"flags": {"x": {"key": "x", "version": 1, "variations": [1], "fallthrough": {"variation": 3}}}})
    )
    result = CliRunner().invoke(main, ["validate", str(bad), "--strict"])
    assert result.exit_code == 2
    assert "flags.x.fallthrough.variation: variation index 3 is out of range" in result.output
    # Without --strict it would import: the warning is listed, and only warnings exit 0.
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "warning: flags.x.fallthrough.variation: variation index 3 is out of range (the flag has 1 variations): "
        "evaluates to MALFORMED_FLAG where it is reached",
        "ok: 1 flags, 0 segments (1 warning)",
    ]
    strict = CliRunner().invoke(main, ["validate", str(bad)], env={"RELAY_STRICT_WRITES": "1"})  # the setting
    assert strict.exit_code == 2 and "error: flags.x.fallthrough.variation" in strict.output
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"flags": {}, "segments": {}}))
    assert CliRunner().invoke(main, ["validate", str(good)]).output == "ok: 0 flags, 0 segments\n"
