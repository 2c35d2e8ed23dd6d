"""The CLI as a new operator meets it: eval of the live flags, the embedded Redis's one data directory
per user, and the small things (headers, exit codes, help texts, numbers in JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import platformdirs
import pytest
from click.testing import CliRunner, Result

from relay.cli import main
from relay.config import load_settings
from relay.store.embedded import EmbeddedRedis
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


def test_the_embedded_redis_is_one_per_user_whatever_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    env = {"RELAY_HOME": str(home)}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        monkeypatch.chdir(tmp_path / "a")
        first = _relay(["flags", "list", "--env", "demo"], env)
        assert first.exit_code == 0 and "Created the demo environment" in first.output, first.output
        keys = json.loads((home / "demo-credentials.json").read_text())
        assert _relay(["flags", "toggle", "checkout-kill-switch", "--off", "--env", "demo"], env).exit_code == 0
        monkeypatch.chdir(tmp_path / "b")  # another directory: the same Redis, the same demo
        again = _relay(["flags", "get", "checkout-kill-switch", "--env", "demo"], env)
        assert again.exit_code == 0 and "Created the demo environment" not in again.output
        assert json.loads(again.stdout)["on"] is False
        listed = json.loads(_relay(["env", "list", "--json"], env).stdout)
        assert [e["client_side_id"] for e in listed] == [keys["client_side_id"]]
        assert not (tmp_path / "a" / ".relay").exists() and not (tmp_path / "b" / ".relay").exists()
        assert str(home) in _relay(["redis", "status"], env).output
        shown = json.loads(_relay(["config", "show"], env).stdout)
        assert shown["data_dir"] == str(home)
        # An unknown environment on the embedded Redis says which Redis that was.
        unknown = _relay(["flags", "list", "--env", "prod"], env)
        assert unknown.exit_code == 3 and f"note: this is the embedded Redis in {home}" in unknown.stderr
    finally:
        EmbeddedRedis(home).stop()


def test_an_existing_dot_relay_is_still_used_and_the_default_is_the_user_s_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAY_HOME", raising=False)
    assert load_settings({}).data_dir == platformdirs.user_data_dir("relay", appauthor=False)
    (tmp_path / ".relay").mkdir()  # where relay kept it before: kept there
    assert load_settings({}).data_dir == str(tmp_path / ".relay")
    assert load_settings({"RELAY_HOME": str(tmp_path / "h")}).data_dir == str(tmp_path / "h")
    assert load_settings({"RELAY_HOME": "x", "RELAY_DATA_DIR": "/d"}).data_dir == "/d"  # the setting wins


def test_serve_logs_each_applied_change_and_counts_live_items(redis_server: RedisServer, tmp_path: Path) -> None:
    import re
    import time

    from relay.store.writes import WritePath
    from tests.integration.helpers import run_async, storage_for
    from tests.integration.relay_process import RelayProcess

    demo_environment(redis_server.url)  # 5 flags
    admin = WritePath(storage_for(redis_server.url), actor="ops")
    run_async(admin.delete_item("prod", "flag", "internal-debug-panel"))  # a tombstone stays
    node = RelayProcess(redis_server.url, tmp_path / "relay").start()
    try:
        admin = WritePath(storage_for(redis_server.url), actor="ops")
        run_async(admin.toggle("prod", "checkout-kill-switch", False))
        admin = WritePath(storage_for(redis_server.url), actor="ops")
        run_async(admin.delete_item("prod", "flag", "new-search"))
        pattern = re.compile(
            r"prod: applied flag checkout-kill-switch \(version 2, data version \d+\), (\d+) ms after the write"
        )
        deadline = time.monotonic() + 10
        while not (pattern.search(node.log.read_text()) and "deleted flag new-search" in node.log.read_text()):
            assert time.monotonic() < deadline, node.log.read_text()
            time.sleep(0.05)
        log = node.log.read_text()
        found = pattern.search(log)
        assert found is not None and int(found.group(1)) < 5000
        assert "prod: loaded 4 flags, 1 segments at version" in log, log  # not 5: the tombstone is no flag
    finally:
        node.stop()


def test_serve_shows_the_demo_keys_and_what_to_try_at_every_start(tmp_path: Path) -> None:
    from tests.integration.relay_process import RelayProcess

    logs = []
    for _ in range(2):  # a second `make run` shows them again
        node = RelayProcess("", tmp_path, data_dir=str(tmp_path / "data"))
        node.redis_url = ""  # the embedded Redis
        node.start()
        assert node.stop() == 0
        logs.append(node.log.read_text())
        node.log.unlink()
    keys = json.loads((tmp_path / "data" / "demo-credentials.json").read_text())
    for log in logs:
        assert "relay serves the demo environment at http://127.0.0.1:" in log
        assert keys["sdk_key"] in log and keys["client_side_id"] in log and keys["mobile_key"] in log
        assert f"curl -s -H 'Authorization: {keys['sdk_key']}' http://127.0.0.1:" in log
        assert "/sdk/latest-flags/checkout-kill-switch" in log and "flags toggle checkout-kill-switch --off" in log


def test_make_run_installs_what_running_needs_and_make_test_the_rest(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("no make")
    repo = Path(__file__).resolve().parents[2]
    venv = tmp_path / "venv"

    def dry(target: str) -> str:
        return subprocess.run(
            ["make", "-n", target, f"VENV={venv}"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout

    run = dry("run")
    assert "pip install --quiet -e . " in run and "dev" not in run and "loadtest" not in run
    assert f"{venv}/bin/relay serve" in run
    assert "pip install --quiet -e '.[dev,loadtest]'" in dry("test")


def test_the_small_slips(live: dict[str, str], tmp_path: Path) -> None:
    # flags list and segments list have a header row; --json stays as it was.
    flags = _relay(["flags", "list", "--env", "prod"], live).stdout.splitlines()
    assert flags[0].split() == ["KEY", "VERSION", "ON", "RULES", "DESCRIPTION"]
    assert flags[1].split()[:3] == ["checkout-kill-switch", "1", "ON"]
    assert _relay(["segments", "list", "--env", "prod"], live).stdout.splitlines()[0].split() == [
        "KEY", "VERSION", "INCLUDED", "RULES"
    ]  # fmt: skip
    assert set(json.loads(_relay(["flags", "list", "--env", "prod", "--json"], live).stdout)) >= {"new-search"}
    # The seed's progress bar counts items, not connections.
    seeded = _relay(["loadtest", "seed", "--env", "prod", "--flags", "20", "--segments", "2"], live)
    assert seeded.exit_code == 0 and "item/s" in seeded.stderr and "conn/s" not in seeded.stderr, seeded.output
    # Every command has a help text.
    assert "Whether the embedded redis-server is running" in _relay(["redis", "status", "--help"], live).stdout
    # A bad variable is named as it is spelt.
    bad = _relay(["config", "show"], {**live, "RELAY_PORT": "eighty"})
    assert bad.exit_code == 2 and "$RELAY_PORT: expected int" in bad.output


def test_serve_on_a_busy_port_says_so_with_its_own_exit_code(redis_server: RedisServer, tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "relay", "serve", "--port", str(port)],
            env={"RELAY_REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin", "RELAY_HOME": str(tmp_path)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 7, (result.returncode, result.stderr)
    assert f"127.0.0.1:{port} is in use" in result.stderr and "--port or RELAY_PORT" in result.stderr
