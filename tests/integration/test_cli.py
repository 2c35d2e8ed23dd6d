"""The relay CLI end to end: environments, flags, audit, config, errors and exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from relay.cli import main
from relay.store.embedded import EmbeddedRedis
from tests.integration.helpers import simple_flag
from tests.integration.redis_server import RedisServer


def relay(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, args, env={"RELAY_ACTOR": "ops@example.com", **env}, input=stdin)


@pytest.fixture
def env_vars(redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray config/relay.yaml
    return {"RELAY_REDIS_URL": redis_server.url, "RELAY_ENV": "prod"}


def test_environment_flag_lifecycle_and_audit(env_vars: dict[str, str], tmp_path: Path) -> None:
    created = relay(["env", "create", "prod", "--json"], env_vars)
    assert created.exit_code == 0, created.output
    keys = json.loads(created.output)
    assert set(keys) == {"key", "sdk_key", "client_side_id", "mobile_key"} and keys["sdk_key"].startswith("sdk-")
    listed = relay(["env", "list", "--json"], env_vars)
    assert json.loads(listed.output)[0]["client_side_id"] == keys["client_side_id"]
    assert keys["sdk_key"] not in listed.output

    path = tmp_path / "checkout.json"
    path.write_text(json.dumps(simple_flag("checkout")))
    assert relay(["flags", "set", str(path), "--comment", "launch"], env_vars).exit_code == 0
    off = relay(["flags", "toggle", "checkout", "--off", "--comment", "incident 9"], env_vars)
    assert off.exit_code == 0 and "turned off checkout (version 2" in off.output
    got = json.loads(relay(["flags", "get", "checkout"], env_vars).output)
    assert got["on"] is False and got["version"] == 2
    seg = relay(["segments", "set", "-", "--key", "beta"], env_vars, stdin=json.dumps({"included": ["ann"]}))
    assert seg.exit_code == 0, seg.output
    assert "beta" in relay(["segments", "list"], env_vars).output

    audit = relay(["audit", "--flag", "checkout"], env_vars)
    assert "ops@example.com  toggle flag checkout (data version 2): incident 9" in audit.output
    assert "    on: true -> false" in audit.output
    as_json = json.loads(relay(["audit", "--json", "--since", "1h"], env_vars).output)
    assert [e["action"] for e in as_json] == ["create", "toggle", "create", "env-create"]
    assert relay(["audit", "--since", "2999-01-01"], env_vars).output == ""

    exported = relay(["flags", "export"], env_vars)
    doc = json.loads(exported.output)
    assert set(doc["flags"]) == {"checkout"} and set(doc["segments"]) == {"beta"}
    (tmp_path / "export.json").write_text(exported.output)
    relay(["env", "create", "staging"], env_vars)
    imported = relay(["flags", "import", str(tmp_path / "export.json"), "--env", "staging"], env_vars)
    assert imported.exit_code == 0 and "imported 2 items" in imported.output
    assert relay(["flags", "delete", "checkout", "--env", "staging"], env_vars).exit_code == 0


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["flags", "list", "--env", "nope"], None, 3, 'unknown environment "nope" (known: prod)'),
        (["flags", "toggle", "missing", "--on"], None, 3, 'no flag "missing" in environment "prod"'),
        (["flags", "set", "-"], "{not json", 2, "stdin: invalid JSON"),
        (
            ["flags", "set", "-", "--strict"],
            json.dumps(
                simple_flag(
                    "f", rules=[{"variation": 0, "clauses": [{"attribute": "a", "op": "equalz", "values": []}]}]
                )
            ),
            2,
            'flags.f.rules[0].clauses[0].op: unknown operator "equalz"',
        ),
        (["flags", "set", "-", "--expect-version", "4"], json.dumps(simple_flag("f")), 4, "is at version 0, not 4"),
        (["flags", "toggle", "x"], None, 2, "Missing option '--on'"),
    ],
)
def test_errors_and_exit_codes(
    env_vars: dict[str, str], args: list[str], stdin: str | None, code: int, message: str
) -> None:
    relay(["env", "create", "prod"], env_vars)
    result = relay(args, env_vars, stdin=stdin)
    assert result.exit_code == code, result.output
    assert message in result.output


def test_unreachable_redis_masks_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = relay(["env", "list"], {"RELAY_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"})
    assert result.exit_code == 5
    assert "Redis unreachable at redis://:****@127.0.0.1:1/0" in result.output and "hunter2" not in result.output


def test_config_file_and_environment_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "relay.yaml").write_text(
        "port: 9100\nredis_url: redis://:filepw@db:6379/0\nlog_format: json\naccess_log: yes\n"
    )
    shown: dict[str, Any] = json.loads(relay(["config", "show"], {"RELAY_PORT": "9200"}).output)
    assert shown["port"] == 9200 and shown["log_format"] == "json"  # the variable wins over the file
    assert shown["access_log"] is True
    assert json.loads(relay(["config", "show"], {"RELAY_ACCESS_LOG": "false"}).output)["access_log"] is False
    bad_bool = relay(["config", "show"], {"RELAY_ACCESS_LOG": "sometimes"})
    assert bad_bool.exit_code == 2 and "expected bool, got 'sometimes'" in bad_bool.output
    assert shown["redis_url"] == "redis://:****@db:6379/0"
    bad = relay(["config", "show"], {"RELAY_PORT": "eighty"})
    assert bad.exit_code == 2 and "$RELAY_PORT: expected int, got 'eighty'" in bad.output
    (tmp_path / "config" / "relay.yaml").write_text("prot: 1\n")
    assert "unknown setting" in relay(["config", "show"], {}).output


def test_embedded_redis_with_demo_is_started_reused_and_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"RELAY_DATA_DIR": str(tmp_path / "data")}
    try:
        first = relay(["flags", "list", "--env", "demo"], env)
        assert first.exit_code == 0, first.output
        assert "Created the demo environment" in first.output and "checkout-kill-switch" in first.output
        creds = json.loads((tmp_path / "data" / "demo-credentials.json").read_text())
        assert (tmp_path / "data" / "demo-credentials.json").stat().st_mode & 0o777 == 0o600
        assert relay(["flags", "toggle", "checkout-kill-switch", "--off", "--env", "demo"], env).exit_code == 0
        assert EmbeddedRedis(tmp_path / "data").running()
        assert "stopped" in relay(["redis", "stop"], env).output
        # Restarted from its append-only file: the toggle survived, and no second demo was made.
        again = relay(["flags", "get", "checkout-kill-switch", "--env", "demo"], env)
        assert json.loads(again.output)["on"] is False
        assert json.loads(relay(["env", "list", "--json"], env).output)[0]["client_side_id"] == creds["client_side_id"]
    finally:
        EmbeddedRedis(tmp_path / "data").stop()


def test_serve_on_the_embedded_redis_serves_the_demo_and_drains_on_sigterm(tmp_path: Path) -> None:
    import urllib.request

    from tests.integration.relay_process import RelayProcess

    node = RelayProcess("", tmp_path, data_dir=str(tmp_path / "data"))
    node.redis_url = ""  # unset: the embedded Redis
    node.start()
    try:
        creds = json.loads((tmp_path / "data" / "demo-credentials.json").read_text())
        env = {"RELAY_DATA_DIR": str(tmp_path / "data")}
        assert relay(["flags", "toggle", "new-search", "--off", "--env", "demo"], env).exit_code == 0

        def served_on() -> bool:
            request = urllib.request.Request(
                f"{node.url}/sdk/latest-flags/new-search", headers={"Authorization": creds["sdk_key"]}
            )
            with urllib.request.urlopen(request, timeout=5) as r:
                return bool(json.loads(r.read())["on"])

        deadline = time.monotonic() + 10
        while served_on() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not served_on()
    finally:
        assert node.stop() == 0
    log = node.log.read_text()
    assert "stopped the embedded redis-server" in log, log
    assert not EmbeddedRedis(tmp_path / "data").running()
