"""The CLI and tokens: break-glass tokens on Redis directly, the CLI through the admin API of a real node
(audited with the token's owner; --actor refused), direct-Redis writes marked as such, and audit revert."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from relay.cli import main
from tests.integration.helpers import demo_environment
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess


def relay(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, args, env={"RELAY_ENV": "prod", **env}, input=stdin)


@pytest.fixture
def node(redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RelayProcess]:
    monkeypatch.chdir(tmp_path)  # no stray config/relay.yaml
    monkeypatch.delenv("RELAY_API_URL", raising=False)
    monkeypatch.delenv("RELAY_TOKEN", raising=False)
    demo_environment(redis_server.url)
    started = RelayProcess(redis_server.url, tmp_path / "relay").start()
    yield started
    started.stop()


def break_glass(redis_url: str, *args: str) -> dict[str, Any]:
    made = relay(
        ["tokens", "create", "--name", "root", "--role", "admin", "--json", *args], {"RELAY_REDIS_URL": redis_url}
    )
    assert made.exit_code == 0, made.output
    return json.loads(made.stdout)  # type: ignore[no-any-return]


def test_break_glass_tokens_on_redis_directly(node: RelayProcess, redis_server: RedisServer) -> None:
    direct = {"RELAY_REDIS_URL": redis_server.url}
    root = break_glass(redis_server.url, "--expires", "7d")
    assert set(root) == {"id", "token", "name", "role", "envs", "flags", "expires"} and root["token"].startswith(
        "relay_pat_"
    )
    text = relay(
        ["tokens", "create", "--name", "ann", "--role", "writer", "--env", "prod", "--flags", "checkout-*"], direct
    )
    assert text.exit_code == 0 and "for ann (writer, prod; flags checkout-*" in text.stdout
    ann_token = text.stdout.strip().splitlines()[-1]
    assert ann_token.startswith("relay_pat_")
    listed = relay(["tokens", "list"], direct)
    assert "root" in listed.stdout and "ann" in listed.stdout and ann_token not in listed.stdout
    rows = json.loads(relay(["tokens", "list", "--json"], direct).stdout)
    ann = next(r for r in rows if r["name"] == "ann")
    assert ann["createdBy"] == f"direct-redis:{getpass.getuser()}"
    rotated = relay(["tokens", "rotate", ann["id"], "--json"], direct)
    assert rotated.exit_code == 0 and json.loads(rotated.stdout)["token"] != ann_token
    assert relay(["tokens", "revoke", ann["id"]], direct).exit_code == 0
    assert json.loads(relay(["tokens", "list", "--json"], direct).stdout)[-1]["state"] == "revoked"
    bad = relay(["tokens", "create", "--name", "x", "--role", "reader", "--expires", "2y"], direct)
    assert bad.exit_code == 2 and "365" in bad.output


def test_the_cli_through_the_api_is_audited_with_the_token(node: RelayProcess, redis_server: RedisServer) -> None:
    root = break_glass(redis_server.url)
    api = {"RELAY_API_URL": node.admin_url, "RELAY_TOKEN": root["token"]}
    made = relay(["tokens", "create", "--name", "ann", "--role", "writer", "--env", "prod", "--json"], api)
    assert made.exit_code == 0, made.output
    ann = json.loads(made.stdout)
    as_ann = {"RELAY_API_URL": node.admin_url, "RELAY_TOKEN": ann["token"]}
    off = relay(["flags", "toggle", "checkout-kill-switch", "--off", "--comment", "incident 3"], as_ann)
    assert off.exit_code == 0 and "turned off checkout-kill-switch" in off.output, off.output
    refused = relay(["flags", "toggle", "checkout-kill-switch", "--on", "--actor", "mallory"], as_ann)
    assert refused.exit_code == 2 and "--actor is refused" in refused.output
    entries = json.loads(relay(["audit", "--flag", "checkout-kill-switch", "--json"], as_ann).stdout)
    assert (entries[0]["actor"], entries[0]["via"], entries[0]["token"]) == ("ann", "api", ann["id"])
    shown = relay(["audit", "--flag", "checkout-kill-switch"], as_ann).stdout
    assert "ann  toggle flag checkout-kill-switch" in shown and f"[API, token {ann['id']}]" in shown
    assert json.loads(relay(["flags", "get", "checkout-kill-switch"], as_ann).stdout)["on"] is False
    stale = relay(["flags", "toggle", "checkout-kill-switch", "--on", "--expect-version", "1"], as_ann)
    assert stale.exit_code == 4  # 412 from the API: a version conflict, as on Redis
    escalate = relay(["tokens", "create", "--name", "eve", "--role", "admin"], as_ann)
    assert escalate.exit_code == 1 and "admin role" in escalate.output
    assert relay(["env", "rotate-key", "prod", "--sdk"], api).exit_code == 2  # not in the API yet: said so
    listed = json.loads(relay(["env", "list", "--json"], api).stdout)
    assert listed[0]["key"] == "prod" and listed[0]["sdk_keys"] == 1
    assert relay(["flags", "list"], {**api, "RELAY_TOKEN": "relay_pat_nope"}).exit_code == 1

    # env delete through the API: the plan first (a dry run), then the delete, audited with the token.
    assert relay(["env", "create", "scratch"], api).exit_code == 0
    dry = relay(["env", "delete", "scratch", "--dry-run"], api)
    assert dry.exit_code == 0 and "dry run: nothing deleted. Would delete environment scratch" in dry.output, dry.output
    assert relay(["env", "delete", "scratch"], api, stdin="n\n").exit_code != 0  # not confirmed: kept
    assert "scratch" in relay(["env", "list"], api).stdout
    gone = relay(["env", "delete", "scratch", "--yes", "--comment", "tidy"], api)
    assert gone.exit_code == 0 and "deleted environment scratch" in gone.output, gone.output
    assert "scratch" not in relay(["env", "list"], api).stdout
    entry = json.loads(relay(["audit", "--env", "scratch", "--json"], api).stdout)[0]
    assert (entry["action"], entry["via"], entry["token"]) == ("env-delete", "api", root["id"])
    assert entry["comment"] == "tidy"


def test_direct_redis_writes_are_marked_and_revert(node: RelayProcess, redis_server: RedisServer) -> None:
    direct = {"RELAY_REDIS_URL": redis_server.url, "RELAY_ACTOR": "claimed-name"}
    assert relay(["flags", "toggle", "checkout-kill-switch", "--off"], direct).exit_code == 0
    entry = json.loads(relay(["audit", "--flag", "checkout-kill-switch", "--json"], direct).stdout)[0]
    assert (entry["actor"], entry["via"], entry["os_user"]) == ("claimed-name", "direct-redis", getpass.getuser())
    shown = relay(["audit", "--flag", "checkout-kill-switch", "--limit", "1"], direct).stdout
    assert f"[direct Redis, OS user {getpass.getuser()}]" in shown
    reverted = relay(["audit", "revert", entry["id"], "--comment", "undo"], direct)
    assert reverted.exit_code == 0 and "checkout-kill-switch is back" in reverted.output, reverted.output
    assert json.loads(relay(["flags", "get", "checkout-kill-switch"], direct).stdout)["on"] is True
    again = relay(["audit", "revert", entry["id"]], direct)
    assert again.exit_code == 4 and "revert the later changes first" in again.output
    root = break_glass(redis_server.url)
    api = {"RELAY_API_URL": node.admin_url, "RELAY_TOKEN": root["token"]}
    latest = json.loads(relay(["audit", "--flag", "checkout-kill-switch", "--json", "--limit", "1"], api).stdout)[0]
    assert latest["comment"] == "undo" and latest["via"] == "direct-redis"
    through_api = relay(["audit", "revert", latest["id"]], api)
    assert through_api.exit_code == 0, through_api.output
    newest = json.loads(relay(["audit", "--flag", "checkout-kill-switch", "--json", "--limit", "1"], api).stdout)[0]
    assert newest["actor"] == "root" and newest["via"] == "api" and newest["after"]["on"] is False
