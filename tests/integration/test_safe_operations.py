"""Safe operations against a real redis-server: dry runs, the import's shape check and --replace
confirmation, `relay validate`, no-op writes, `--expect-version 0` over a tombstone, `env accept`
only where Redis lost data, and `env delete`. Each rule has a test that fails without it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from relay.cli import main
from relay.errors import ConflictError, ValidationError
from relay.store.plan import confirmed
from relay.wire import codec
from tests.integration.helpers import new_env, run_async, simple_flag
from tests.integration.redis_server import RedisServer
from tests.integration.test_bad_writes import dump

SEGMENT = {"key": "beta", "included": ["ann"]}


def relay(args: list[str], url: str, stdin: str | None = None) -> Result:
    env = {"RELAY_REDIS_URL": url, "RELAY_ENV": "prod", "RELAY_ACTOR": "ops@example.com"}
    return CliRunner().invoke(main, args, env=env, input=stdin)


@pytest.fixture
def url(redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Environment "prod" with flags checkout (on) and search, and segment beta."""
    monkeypatch.chdir(tmp_path)  # no stray config/relay.yaml

    async def setup() -> None:
        admin, _ = await new_env(redis_server.url)
        await admin.put_item("prod", "flag", simple_flag("checkout"))
        await admin.put_item("prod", "flag", simple_flag("search"))
        await admin.put_item("prod", "segment", SEGMENT)

    run_async(setup())
    yield redis_server.url


def write_json(path: Path, value: Any) -> str:
    path.write_text(json.dumps(value))
    return str(path)


class Channel:
    """A subscriber to one channel, to prove what was (not) published."""

    def __init__(self, url: str, channel: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        self.pubsub.get_message(timeout=1)  # the subscribe confirmation

    def messages(self, wait: float = 0.3) -> list[Any]:
        out = []
        while (m := self.pubsub.get_message(timeout=wait)) is not None:
            out.append(codec.loads(m["data"]))
        return out

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


# --- dry runs ------------------------------------------------------------------------------------------


def test_every_cli_write_has_a_dry_run_that_shows_the_diff_and_writes_nothing(url: str, tmp_path: Path) -> None:
    before = dump(url)
    changed = write_json(tmp_path / "c.json", simple_flag("checkout", on=False, description="paused"))
    created = write_json(tmp_path / "n.json", simple_flag("new-one"))
    doc = write_json(tmp_path / "doc.json", {"flags": {"checkout": simple_flag("checkout", on=False)}})
    cases: list[tuple[list[str], list[str]]] = [
        (["flags", "set", changed], ["would update flag checkout (version 1 -> 2)",
                                     '    description: (absent) -> "paused"', "    on: true -> false"]),
        (["flags", "set", created], ["would create flag new-one (version 1)"]),
        (["flags", "toggle", "checkout", "--off"], ["would update flag checkout (version 1 -> 2)",
                                                    "    on: true -> false"]),
        (["flags", "delete", "search"], ["would delete flag search (version 1)"]),
        (["segments", "delete", "beta"], ["would delete segment beta (version 1)"]),
        (["flags", "import", doc, "--replace"], ["would update flag checkout (version 1 -> 2)",
                                                 "would delete flag search (version 1)",
                                                 "would delete segment beta (version 1)",
                                                 "1 updated, 2 deleted, 0 unchanged"]),
        (["env", "delete", "prod"], ["Would delete environment prod with 2 flags and 1 segments"]),
        (["env", "accept", "prod", "--force"], ["nodes would take Redis's data as it is (forced): 2 flags"]),
        (["env", "rotate-key", "prod", "--sdk", "--grace", "1h"], ["would stop working at"]),
    ]  # fmt: skip
    for command, expected in cases:
        result = relay([*command, "--dry-run"], url)  # no --yes needed: nothing is deleted
        assert result.exit_code == 0, (command, result.output)
        for line in expected:
            assert line in result.output, (command, result.output)
        assert dump(url) == before, command


def test_a_dry_run_returns_the_plan_with_before_and_after(url: str, tmp_path: Path) -> None:
    result = relay(["flags", "toggle", "checkout", "--off", "--dry-run", "--json"], url)
    out = json.loads(result.output)
    assert out["dry_run"] is True and out["data_versions"] == [] and out["updated"] == 1
    (change,) = out["changes"]
    assert change["action"] == "updated" and change["before"]["on"] is True and change["after"]["on"] is False
    assert change["before"]["version"] == 1 and change["after"]["version"] == 2
    doc = write_json(tmp_path / "doc.json", {"flags": {"checkout": simple_flag("checkout")}, "segments": {}})
    imported = json.loads(relay(["flags", "import", doc, "--replace", "--dry-run", "--json"], url).output)
    assert (imported["written"], imported["unchanged"], imported["deleted"]) == (0, 1, 2)
    assert {(c["kind"], c["key"], c["action"]) for c in imported["changes"]} == {
        ("flag", "checkout", "unchanged"), ("flag", "search", "deleted"), ("segment", "beta", "deleted")
    }  # fmt: skip
    assert json.loads(relay(["flags", "get", "checkout"], url).output)["on"] is True


# --- the import's shape and --replace -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"flagz": {"checkout": simple_flag("checkout")}}, "error: flagz: unknown top-level key: a document has only"),
        ({"flags": {}, "segmnets": {}}, "error: segmnets: unknown top-level key"),
        ({}, 'error: document: has neither "flags" nor "segments"'),
    ],
    ids=["misspelt-flags", "misspelt-segments", "empty"],
)
def test_import_refuses_a_top_level_other_than_flags_and_segments(
    url: str, tmp_path: Path, doc: Any, message: str
) -> None:
    before = dump(url)
    result = relay(["flags", "import", write_json(tmp_path / "typo.json", doc), "--replace", "--yes"], url)
    assert result.exit_code == 2 and result.output.startswith(message), result.output
    assert dump(url) == before

    async def through_the_write_path() -> None:
        admin, _ = await new_env(url, env="other")
        with pytest.raises(ValidationError, match=r"unknown top-level key|neither"):
            await admin.import_items("prod", doc, replace_all=True, confirm=confirmed)

    run_async(through_the_write_path())


def test_replace_that_deletes_needs_yes_off_a_terminal(url: str, tmp_path: Path) -> None:
    before = dump(url)
    doc = write_json(tmp_path / "doc.json", {"flags": {"checkout": simple_flag("checkout")}})
    refused = relay(["flags", "import", doc, "--replace"], url)  # CliRunner's stdin is no terminal
    assert refused.exit_code == 2, refused.output
    assert "pass --yes" in refused.output and "would delete 2 items (flag search, segment beta)" in refused.output
    assert dump(url) == before
    done = relay(["flags", "import", doc, "--replace", "--yes"], url)
    assert done.exit_code == 0
    assert "imported 2 items (1 flags) into prod: 0 created, 0 updated, 2 deleted" in done.output
    assert json.loads(relay(["flags", "list", "--json"], url).output).keys() == {"checkout"}


def test_replace_asks_on_a_terminal_saying_how_many_it_deletes(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("relay.cli.show.interactive", lambda: True)
    before = dump(url)
    doc = write_json(tmp_path / "doc.json", {"flags": {"checkout": simple_flag("checkout")}})
    no = relay(["flags", "import", doc, "--replace"], url, stdin="n\n")
    assert "would delete flag search (version 1)" in no.output
    assert "Delete these 2 items from prod? [y/N]" in no.output and no.exit_code == 2
    assert dump(url) == before
    yes = relay(["flags", "import", doc, "--replace"], url, stdin="y\n")
    assert yes.exit_code == 0 and "2 deleted" in yes.output, yes.output
    # Nothing to delete: nothing to ask.
    again = relay(["flags", "import", doc, "--replace"], url, stdin="")
    assert again.exit_code == 0 and "[y/N]" not in again.output and "1 unchanged" in again.output


# --- relay validate ------------------------------------------------------------------------------------


def test_validate_reports_every_error_with_the_imports_own_checks(tmp_path: Path) -> None:
    doc = {
        "flagz": {},
        "flags": {
            "ok": simple_flag("ok"),
            "bad-on": simple_flag("bad-on", on="yes"),
            "bad-key": simple_flag("other"),
            "huge": simple_flag("huge", variations=["x" * 5000, "y"]),
        },
        "segments": {"s": {"excluded": [1]}},
    }
    path = write_json(tmp_path / "flags.json", doc)
    result = CliRunner().invoke(main, ["validate", path], env={"RELAY_MAX_ITEM_BYTES": "4096"})
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[:3] == [
        'error: flagz: unknown top-level key: a document has only "flags" and "segments"',
        'error: flags.bad-on.on: expected a boolean, got the string "yes"',
        'error: flags.bad-key.key: "other" does not match its map key "bad-key"',
    ]
    assert lines[3].startswith("error: flags.huge: ") and lines[3].endswith("over max_item_bytes (4,096)")
    assert lines[4:] == [
        "error: segments.s.excluded[0]: expected a string, got the integer 1",
        f"error: 5 errors in {path}; it would not import",
    ]
    assert CliRunner().invoke(main, ["validate", write_json(tmp_path / "e.json", {})]).exit_code == 2


def test_validate_caps_the_list(tmp_path: Path) -> None:
    doc = {"flags": {f"f{i}": simple_flag(f"f{i}", on=i) for i in range(150)}}
    result = CliRunner().invoke(main, ["validate", write_json(tmp_path / "many.json", doc)])
    lines = result.output.splitlines()
    assert result.exit_code == 2 and len(lines) == 102
    assert lines[99].startswith("error: flags.f99.on:") and lines[100] == "… and 50 more"


# --- no-op writes --------------------------------------------------------------------------------------


def test_writing_an_identical_item_writes_nothing(url: str, tmp_path: Path) -> None:
    channel = Channel(url, "relay:prod:changes")
    try:
        before = dump(url)
        # The same content, with a version of its own: relay sets versions, so it is still no change.
        same = write_json(tmp_path / "same.json", {**simple_flag("checkout"), "version": 41})
        result = relay(["flags", "set", same], url)
        assert result.exit_code == 0 and "unchanged: flag checkout is already so (version 1)" in result.output
        segment = relay(["segments", "set", "-"], url, stdin=json.dumps(SEGMENT))
        assert "unchanged: segment beta" in segment.output
        doc = {"flags": {"checkout": simple_flag("checkout"), "search": simple_flag("search", on=False)}}
        imported = relay(["flags", "import", write_json(tmp_path / "doc.json", doc)], url)
        assert "imported 1 items (1 flags) into prod: 0 created, 1 updated, 0 deleted, 1 unchanged" in imported.output
        after = dump(url)
        assert len(after["relay:prod:audit"][1]) == len(before["relay:prod:audit"][1]) + 1  # the one update
        assert after["relay:prod:version"] == ("string", b"4")
        assert [(m["key"], m["version"]) for m in channel.messages()] == [("search", 4)]
        assert json.loads(relay(["flags", "get", "checkout"], url).output)["version"] == 1
    finally:
        channel.close()


def test_content_is_compared_as_json_so_true_is_not_1(url: str) -> None:
    async def scenario() -> None:
        admin, _ = await new_env(url, env="json")
        await admin.put_item("json", "flag", simple_flag("f", variations=[True, False]))
        result = await admin.put_item("json", "flag", simple_flag("f", variations=[1, 0]))
        assert [c.action for c in result.changes] == ["updated"] and result.data_versions == [2]

    run_async(scenario())


# --- --expect-version 0 --------------------------------------------------------------------------------


def test_expect_version_0_accepts_a_deleted_items_tombstone(url: str, tmp_path: Path) -> None:
    assert relay(["flags", "delete", "search"], url).exit_code == 0
    path = write_json(tmp_path / "search.json", simple_flag("search"))
    recreated = relay(["flags", "set", path, "--expect-version", "0"], url)
    assert recreated.exit_code == 0 and "wrote search (version 3" in recreated.output, recreated.output
    exists = relay(["flags", "set", path, "--expect-version", "0"], url)
    assert exists.exit_code == 4 and 'flag "search" is at version 3, not 0' in exists.output

    async def a_concurrent_create_still_conflicts() -> None:
        admin, _ = await new_env(url, env="race")
        await admin.put_item("race", "flag", simple_flag("f"))
        await admin.delete_item("race", "flag", "f")
        await admin.put_item("race", "flag", simple_flag("f"), expected_version=0)
        with pytest.raises(ConflictError):
            await admin.put_item("race", "flag", simple_flag("f", on=False), expected_version=0)

    run_async(a_concurrent_create_still_conflicts())


# --- env accept ----------------------------------------------------------------------------------------


def test_accept_refuses_an_environment_whose_data_redis_did_not_lose(url: str) -> None:
    before = dump(url)
    refused = relay(["env", "accept", "prod"], url)
    assert refused.exit_code == 4 and "shows no sign of lost data" in refused.output and "--force" in refused.output
    assert dump(url) == before
    forced = relay(["env", "accept", "prod", "--force"], url)
    assert forced.exit_code == 0 and "nodes now take Redis's data (data version 3)" in forced.output
    assert relay(["env", "accept", "prod"], url).exit_code == 4  # accepted: whole again
    # An environment made before the history mark, its audit stream still from its creation: whole.
    client = redis.Redis.from_url(url)
    try:
        client.delete("relay:prod:history")
        assert relay(["env", "accept", "prod"], url).exit_code == 4
    finally:
        client.close()


def test_accept_takes_an_environment_restored_after_redis_lost_its_data(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        record = client.hget("relay:environments", "prod")
        backup = json.loads(relay(["flags", "export"], url).output)
        client.flushall()  # Redis restarted empty; the operator restores the record and the items
        client.hset("relay:environments", "prod", record)  # type: ignore[arg-type]
    finally:
        client.close()
    assert relay(["flags", "import", "-"], url, stdin=json.dumps(backup)).exit_code == 0
    dry = relay(["env", "accept", "prod", "--dry-run"], url)
    assert dry.exit_code == 0 and "Redis lost its data since" in dry.output, dry.output
    accepted = relay(["env", "accept", "prod"], url)
    assert accepted.exit_code == 0, accepted.output
    assert relay(["env", "accept", "prod"], url).exit_code == 4  # the new epoch starts a new history
    assert relay(["env", "accept", "nope"], url).exit_code == 3


# --- env delete ----------------------------------------------------------------------------------------


def test_env_delete_needs_confirmation(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = dump(url)
    refused = relay(["env", "delete", "prod"], url)
    assert refused.exit_code == 2 and "pass --yes" in refused.output and "was not confirmed" in refused.output
    assert dump(url) == before
    monkeypatch.setattr("relay.cli.show.interactive", lambda: True)
    no = relay(["env", "delete", "prod"], url, stdin="n\n")
    assert 'Delete environment "prod" with 2 flags and 1 segments?' in no.output and no.exit_code == 2
    assert dump(url) == before
    yes = relay(["env", "delete", "prod"], url, stdin="y\n")
    assert yes.exit_code == 0 and "deleted environment prod with 2 flags and 1 segments" in yes.output


def test_env_delete_removes_audits_and_announces_it(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.xadd("relay:prod:events", {"kind": "summary"})
    channel = Channel(url, "relay:@environments")
    try:
        result = relay(["env", "delete", "prod", "--yes", "--comment", "retired"], url)
        assert result.exit_code == 0, result.output
        assert channel.messages() == [{"key": "prod", "deleted": True}]
        # What stays: the audit stream, and the deletion mark a node that missed the announcement
        # drops the environment by (tests/integration/test_env_delete.py).
        assert sorted(k.decode() for k in client.scan_iter()) == ["relay:environments:deleted", "relay:prod:audit"]
        assert client.hgetall("relay:environments") == {}
        assert set(client.hgetall("relay:environments:deleted")) == {b"prod"}
    finally:
        channel.close()
        client.close()
    assert json.loads(relay(["env", "list", "--json"], url).output) == []
    assert relay(["flags", "list"], url).exit_code == 3
    audit = json.loads(relay(["audit", "--json"], url).output)  # still readable
    assert audit[0]["action"] == "env-delete" and audit[0]["actor"] == "ops@example.com"
    assert audit[0]["comment"] == "retired" and audit[0]["kind"] == "environment"
    assert "env-delete environment prod: retired" in relay(["audit"], url).output
    # The key can be used again: a fresh environment, its history mark set, the audit continued.
    assert relay(["env", "create", "prod"], url).exit_code == 0
    assert redis.Redis.from_url(url).hgetall("relay:environments:deleted") == {}  # created again: no mark
    assert relay(["env", "accept", "prod"], url).exit_code == 4
    assert relay(["flags", "list", "--json"], url).output.strip() == "{}"
    assert [e["action"] for e in json.loads(relay(["audit", "--json"], url).output)][:2] == ["env-create", "env-delete"]
