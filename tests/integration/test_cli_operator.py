"""The CLI as a new operator meets it: eval of the live flags, the embedded Redis's one data directory
per user, and the small things (headers, exit codes, help texts, numbers in JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from relay.cli import main
from tests.integration.helpers import demo_environment
from tests.integration.redis_server import RedisServer

STUDENT = '{"kind": "user", "key": "zed", "userType": "student"}'


def _relay(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, args, env={"RELAY_ACTOR": "ops", **env}, input=stdin)


@pytest.fixture
def live(redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The demo flags in a real Redis, as environment "prod"; the CLI's variables for it."""
    monkeypatch.chdir(tmp_path)
    demo_environment(redis_server.url)
    return {"RELAY_REDIS_URL": redis_server.url}


def test_eval_evaluates_the_live_flags_so_a_toggle_shows(live: dict[str, str]) -> None:
    def kill_switch(*source: str) -> dict[str, object]:
        result = _relay(["eval", *source, "--context", STUDENT, "--flag", "checkout-kill-switch", "--json"], live)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["checkout-kill-switch"]  # type: ignore[no-any-return]

    assert kill_switch("--env", "prod")["value"] is True
    toggled = _relay(["flags", "toggle", "checkout-kill-switch", "--off", "--env", "prod"], live)
    assert toggled.exit_code == 0, toggled.output
    after = kill_switch("--env", "prod")
    assert after["value"] is False and after["reason"] == {"kind": "OFF"}
    assert kill_switch("--file", "demo")["value"] is True  # the demo file is not Redis
    assert kill_switch()["value"] is True  # neither: the demo file, as before
    assert kill_switch("--flags", "demo")["value"] is True  # the old spelling of --file
    table = _relay(["eval", "--env", "prod", "--context", STUDENT], live)
    assert "prod's live flags in Redis, at data version" in table.stderr
    assert "checkout-kill-switch" in table.stdout and "internal-debug-panel" in table.stdout
    unknown = _relay(["eval", "--env", "nope", "--context", STUDENT], live)
    assert unknown.exit_code == 3 and 'unknown environment "nope"' in unknown.output
