"""Bad writes through the write path and the CLI: each is refused with the JSON path and the reason,
and Redis is provably unchanged (every key of the instance compared before and after, and no change
message published)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from relay.cli import main
from relay.errors import ValidationError
from relay.evaluation.reader import MAX_DEPTH
from relay.store.checks import item_warnings
from relay.store.writes import WritePath
from tests.integration.helpers import new_env, run_async, simple_flag, storage_for
from tests.integration.redis_server import RedisServer

Dump = dict[str, tuple[str, Any]]


def dump(url: str) -> Dump:
    """Every key in the Redis instance with its type and full value."""
    r = redis.Redis.from_url(url)
    out: Dump = {}
    try:
        for key in sorted(r.scan_iter(count=1000)):
            kind = r.type(key).decode()
            if kind == "string":
                value: Any = r.get(key)
            elif kind == "hash":
                value = r.hgetall(key)
            elif kind == "stream":
                value = r.xrange(key)
            elif kind == "set":
                value = r.smembers(key)
            elif kind == "list":
                value = r.lrange(key, 0, -1)
            else:
                value = r.dump(key)
            out[key.decode()] = (kind, value)
    finally:
        r.close()
    return out


def deep(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture
def prod(redis_server: RedisServer) -> Iterator[tuple[str, Dump]]:
    """An environment holding one valid flag and one segment, and the Redis dump of that state."""

    async def setup() -> None:
        admin, _ = await new_env(redis_server.url)
        await admin.put_item("prod", "flag", simple_flag("good"))
        await admin.put_item("prod", "segment", {"key": "beta", "included": ["ann"]})

    run_async(setup())
    before = dump(redis_server.url)
    assert before["relay:prod:version"] == ("string", b"2")
    assert len(before["relay:prod:audit"][1]) == 3  # env-create, two creates
    yield redis_server.url, before


def rule(**clause: Any) -> dict[str, Any]:
    return {"variation": 0, "clauses": [{"attribute": "email", "op": "in", "values": ["a"], **clause}]}


HUGE_STRING = "x" * (20 * 1024 * 1024)
BAD_FLAGS: list[tuple[str, dict[str, Any], str, str]] = [
    ("on-not-bool", simple_flag("bad", on="yes"), "flags.bad.on", 'expected a boolean, got the string "yes"'),
    ("variations-not-array", simple_flag("bad", variations={"a": 1}), "flags.bad.variations", "expected an array"),
    ("fallthrough-variation-string", simple_flag("bad", fallthrough={"variation": "1"}),
     "flags.bad.fallthrough.variation", 'expected an integer, got the string "1"'),
    ("rules-not-array", simple_flag("bad", rules={"0": {}}), "flags.bad.rules", "expected an array"),
    ("rule-not-object", simple_flag("bad", rules=[7]), "flags.bad.rules[0]", "expected an object"),
    ("clause-values-string", simple_flag("bad", rules=[rule(values="a")]),
     "flags.bad.rules[0].clauses[0].values", 'expected an array, got the string "a"'),
    ("clause-negate-int", simple_flag("bad", rules=[rule(negate=1)]),
     "flags.bad.rules[0].clauses[0].negate", "expected a boolean"),
    ("target-value-int", simple_flag("bad", targets=[{"variation": 0, "values": ["ann", 5]}]),
     "flags.bad.targets[0].values[1]", "expected a string, got the integer 5"),
    ("bad-key", simple_flag("bad key!"), "flags.bad key!.key", "letters, digits"),
    ("deep-variation", simple_flag("bad", variations=[deep(10_000), 1]),
     "flags.bad.variations[0]" + "[0]" * (MAX_DEPTH - 2), f"nested more than {MAX_DEPTH} levels deep"),
    ("deep-clause-value", simple_flag("bad", rules=[rule(values=[deep(300, "a")])]),
     "flags.bad.rules[0].clauses[0].values[0]" + "[0]" * (MAX_DEPTH - 6), f"nested more than {MAX_DEPTH}"),
    ("deep-extra-field", simple_flag("bad", description={"a": deep(MAX_DEPTH)}),
     "flags.bad.description.a" + "[0]" * (MAX_DEPTH - 2), f"nested more than {MAX_DEPTH}"),
    ("huge-flag", simple_flag("bad", variations=[HUGE_STRING, "b"]), "flags.bad", "over max_item_bytes (4,194,304)"),
]  # fmt: skip


# What LaunchDarkly's SDKs evaluate without error (to MALFORMED_FLAG, or to no match): written with a
# warning at this path, refused only by strict writes.
WARNED_FLAGS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown-operator", simple_flag("bad", rules=[rule(op="equalz")]),
     "flags.bad.rules[0].clauses[0].op", 'unknown operator "equalz"'),
    ("bad-regex", simple_flag("bad", rules=[rule(op="matches", values=["(unclosed"])]),
     "flags.bad.rules[0].clauses[0].values[0]", "not a valid regular expression"),
    ("fallthrough-index", simple_flag("bad", fallthrough={"variation": 2}),
     "flags.bad.fallthrough.variation", "variation index 2 is out of range"),
    ("off-variation-index", simple_flag("bad", offVariation=-1), "flags.bad.offVariation", "variation index -1"),
    ("rule-variation-index", simple_flag("bad", rules=[{**rule(), "variation": 9}]),
     "flags.bad.rules[0].variation", "variation index 9 is out of range"),
    ("negative-weight", simple_flag("bad", fallthrough={"rollout": {"variations": [
        {"variation": 0, "weight": -1}, {"variation": 1, "weight": 50001}, {"variation": 0, "weight": 50000}]}}),
     "flags.bad.fallthrough.rollout.variations[0].weight", "outside 0..100000"),
    ("weights-over-100000", simple_flag("bad", fallthrough={"rollout": {"variations": [
        {"variation": 0, "weight": 60000}, {"variation": 1, "weight": 60000}]}}),
     "flags.bad.fallthrough.rollout.variations", "weights add up to 120000"),
    ("empty-rollout", simple_flag("bad", fallthrough={"rollout": {"variations": []}}),
     "flags.bad.fallthrough.rollout.variations", "at least one weighted variation"),
    ("own-prerequisite", simple_flag("bad", prerequisites=[{"key": "bad", "variation": 0}]),
     "flags.bad.prerequisites[0].key", "is its own prerequisite"),
]  # fmt: skip


def check_refused(url: str, before: Dump, error: ValidationError, path: str, reason: str) -> None:
    assert error.path == path, error.path
    assert reason in error.reason, error.reason
    assert str(error).startswith(path)
    assert dump(url) == before


REFUSED = [(*c[1:], False) for c in BAD_FLAGS] + [(*c[1:], True) for c in WARNED_FLAGS]


@pytest.mark.parametrize(
    ("data", "path", "reason", "strict"),
    REFUSED,
    ids=[c[0] for c in BAD_FLAGS] + [f"strict-{c[0]}" for c in WARNED_FLAGS],
)
def test_admin_refuses_bad_flags_and_writes_nothing(
    prod: tuple[str, Dump], data: dict[str, Any], path: str, reason: str, strict: bool
) -> None:
    url, before = prod

    async def attempt() -> None:
        admin = WritePath(storage_for(url), actor="tester", strict=strict)
        pubsub = admin.storage.pubsub()
        await pubsub.subscribe("relay:prod:changes")
        for write in (
            lambda: admin.put_item("prod", "flag", data),
            lambda: admin.import_items("prod", {"flags": {data["key"]: data}}),
            lambda: admin.import_items("prod", {"flags": {"fine": simple_flag("fine"), data["key"]: data}}),
        ):
            with pytest.raises(ValidationError) as e:
                await write()
            check_refused(url, before, e.value, path, reason)
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
        await pubsub.aclose()

    run_async(attempt())


@pytest.mark.parametrize(("data", "path", "reason"), [c[1:] for c in WARNED_FLAGS], ids=[c[0] for c in WARNED_FLAGS])
def test_admin_writes_what_the_sdks_evaluate_with_a_warning(
    prod: tuple[str, Dump], data: dict[str, Any], path: str, reason: str
) -> None:
    url, _ = prod

    async def attempt() -> None:
        admin = WritePath(storage_for(url), actor="tester")
        for write in (
            lambda: admin.put_item("prod", "flag", data, dry_run=True),
            lambda: admin.put_item("prod", "flag", data),
            lambda: admin.import_items("prod", {"flags": {"fine": simple_flag("fine"), data["key"]: data}}),
            lambda: admin.toggle("prod", data["key"], False),
        ):
            result = await write()
            assert [w.path for w in result.warnings] == [path], result.warnings
            assert reason in result.warnings[0].message
            assert result.to_dict()["warnings"] == [w.to_dict() for w in result.warnings]
        stored = await admin.get_item("prod", "flag", data["key"])
        # Kept as written (SDKs served it evaluate what was written): it still holds what was warned about.
        assert [w.path for w in item_warnings("flag", data["key"], stored)] == [path]
        with pytest.raises(ValidationError) as e:  # one write's own strict wins over the writer's
            await admin.put_item("prod", "flag", {**data, "salt": "s"}, strict=True)
        assert e.value.path == path
        strict = WritePath(storage_for(url), actor="tester", strict=True)
        assert (await strict.put_item("prod", "flag", {**data, "salt": "t"}, strict=False)).warnings
        toggled = await strict.toggle("prod", data["key"], False)  # the kill switch is never refused
        assert toggled.data_versions and [w.path for w in toggled.warnings] == [path]

    run_async(attempt())


BAD_SHAPES: list[tuple[str, str, Any, str, str]] = [
    ("flag-is-array", "flag", [simple_flag("x")], "flag", "expected a JSON object"),
    ("flag-is-string", "flag", "checkout", "flag", "expected a JSON object"),
    ("flag-without-key", "flag", {"on": True, "variations": [1]}, "flag.key", "is required"),
    ("flag-key-not-string", "flag", {"key": 5}, "flag.key", "is required"),
    ("flag-tombstone", "flag", {**simple_flag("checkout"), "deleted": True}, "flags.checkout.deleted",
     "delete it instead"),
    ("segment-included-string", "segment", {"key": "s", "included": "ann"}, "segments.s.included", "expected an array"),
    ("segment-rule-weight", "segment", {"key": "s", "rules": [{"clauses": [], "weight": "50"}]},
     "segments.s.rules[0].weight", "expected an integer"),
    ("segment-deep-value", "segment", {"key": "s", "rules": [{"clauses": [
        {"attribute": "a", "op": "in", "values": deep(5000)}]}]},
     "segments.s.rules[0].clauses[0].values" + "[0]" * (MAX_DEPTH - 5), "nested more than"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "data", "path", "reason"), [c[1:] for c in BAD_SHAPES], ids=[c[0] for c in BAD_SHAPES]
)
def test_admin_refuses_wrong_shapes(prod: tuple[str, Dump], kind: str, data: Any, path: str, reason: str) -> None:
    url, before = prod

    async def attempt() -> None:
        with pytest.raises(ValidationError) as e:
            await WritePath(storage_for(url), actor="tester").put_item("prod", kind, data)
        check_refused(url, before, e.value, path, reason)

    run_async(attempt())


@pytest.mark.parametrize(
    ("doc", "path", "reason"),
    [
        ([], "document", "expected an object, got an array"),
        ({"flags": []}, "flags", "expected an object, got an array"),
        ({"flags": {"a": simple_flag("b")}}, "flags.a.key", 'does not match its map key "a"'),
        ({"flags": {"a": 7}}, "flags.a", "expected an object, got the integer 7"),
        ({"segments": {"s": {"excluded": [1]}}}, "segments.s.excluded[0]", "expected a string"),
    ],
    ids=["array", "flags-array", "key-mismatch", "item-int", "segment-excluded"],
)
def test_admin_import_refuses_bad_documents(prod: tuple[str, Dump], doc: Any, path: str, reason: str) -> None:
    url, before = prod

    async def attempt() -> None:
        with pytest.raises(ValidationError) as e:
            await WritePath(storage_for(url), actor="tester").import_items("prod", doc, replace_all=True)
        check_refused(url, before, e.value, path, reason)

    run_async(attempt())


def test_the_size_limit_is_a_setting_and_large_flags_below_it_are_fine(prod: tuple[str, Dump]) -> None:
    url, before = prod
    targets = [{"variation": 1, "values": [f"user-{i:06d}" for i in range(100_000)]}]
    big = simple_flag("many-targets", targets=targets)

    async def attempt() -> None:
        admin = WritePath(storage_for(url), actor="tester", max_item_bytes=1_000_000)
        with pytest.raises(ValidationError) as e:
            await admin.put_item("prod", "flag", big)
        check_refused(url, before, e.value, "flags.many-targets", "over max_item_bytes (1,000,000)")
        written = await WritePath(storage_for(url), actor="tester").put_item("prod", "flag", big)
        assert written.data_versions == [3] and len(written.items[0]["targets"][0]["values"]) == 100_000

    run_async(attempt())


# --- the CLI ---------------------------------------------------------------------------------------------


def relay(args: list[str], url: str, stdin: str | bytes | None = None) -> Result:
    env = {"RELAY_REDIS_URL": url, "RELAY_ENV": "prod", "RELAY_ACTOR": "ops@example.com"}
    return CliRunner().invoke(main, args, env=env, input=stdin)


def cli_cases(tmp: Path) -> list[tuple[str, list[str], bytes, str]]:
    """(id, command, file content, the expected error line)."""

    def flag_file(name: str, content: bytes) -> tuple[list[str], bytes]:
        return ["flags", "set", str(tmp / name)], content

    deep_json = b'{"key":"bad","variations":[' + b"[" * 100 + b"1" + b"]" * 100 + b',2],"fallthrough":{"variation":0}}'
    too_deep = b"[" * 10_000 + b"]" * 10_000
    bad = simple_flag("bad", rules=[rule(op="equalz")])
    return [
        ("not-json", *flag_file("a.json", b"{not json"), f"error: {tmp / 'a.json'}: invalid JSON"),
        ("empty", *flag_file("b.json", b""), f"error: {tmp / 'b.json'}: invalid JSON"),
        ("top-level-array", *flag_file("c.json", b"[]"), "error: flag: expected a JSON object"),
        ("wrong-type", *flag_file("d.json", json.dumps(simple_flag("bad", on=1)).encode()),
         "error: flags.bad.on: expected a boolean, got the integer 1"),
        ("unknown-op-strict", [*flag_file("e.json", b"")[0], "--strict"], json.dumps(bad).encode(),
         'error: flags.bad.rules[0].clauses[0].op: unknown operator "equalz"'),
        ("deep", *flag_file("f.json", deep_json),
         "error: flags.bad.variations[0]" + "[0]" * (MAX_DEPTH - 2) + f": nested more than {MAX_DEPTH} levels deep"),
        ("past-orjson-depth", *flag_file("g.json", too_deep), f"error: {tmp / 'g.json'}: invalid JSON: depth limit"),
        ("huge", *flag_file("h.json", json.dumps(simple_flag("bad", variations=[HUGE_STRING, 1])).encode()),
         "error: flags.bad: 20,971,885 bytes as JSON, over max_item_bytes (4,194,304)"),
        ("import-bad-item", ["flags", "import", str(tmp / "i.json")],
         json.dumps({"flags": {"ok": simple_flag("ok"), "bad": simple_flag("bad", on=1)}}).encode(),
         "error: flags.bad.on: expected a boolean, got the integer 1"),
        ("import-warned-item-strict", ["flags", "import", str(tmp / "k.json"), "--strict"],
         json.dumps({"flags": {"ok": simple_flag("ok"), "bad": bad}}).encode(),
         'error: flags.bad.rules[0].clauses[0].op: unknown operator "equalz"'),
        ("import-not-object", ["flags", "import", str(tmp / "j.json")], b'"flags"',
         "error: document: expected an object, got the string"),
    ]  # fmt: skip


def test_cli_refuses_bad_files_with_the_path_and_exit_code_2(prod: tuple[str, Dump], tmp_path: Path) -> None:
    url, before = prod
    for case_id, command, content, expected in cli_cases(tmp_path):
        Path(command[2]).write_bytes(content)
        result = relay(command, url)
        assert result.exit_code == 2, (case_id, result.output[:500])
        assert result.output.startswith(expected), (case_id, result.output[:500])
        assert len(result.output) < 2000, (case_id, "the error should be one short line")
        assert dump(url) == before, case_id
    stdin = relay(["flags", "set", "-"], url, stdin=b"\xff\xfe not utf-8")
    assert stdin.exit_code == 2 and stdin.output.startswith("error: stdin: invalid JSON")
    assert dump(url) == before


def test_cli_size_limit_follows_the_setting(prod: tuple[str, Dump], tmp_path: Path) -> None:
    url, before = prod
    path = tmp_path / "medium.json"
    path.write_text(json.dumps(simple_flag("medium", variations=["x" * 5000, "y"])))
    result = CliRunner().invoke(
        main,
        ["flags", "set", str(path)],
        env={"RELAY_REDIS_URL": url, "RELAY_ENV": "prod", "RELAY_MAX_ITEM_BYTES": "4096"},
    )
    assert result.exit_code == 2 and result.output.startswith("error: flags.medium: "), result.output
    assert "over max_item_bytes (4,096)" in result.output
    assert dump(url) == before
    assert relay(["flags", "set", str(path)], url).exit_code == 0


def test_cli_writes_with_warnings_after_the_result_and_strict_refuses(prod: tuple[str, Dump], tmp_path: Path) -> None:
    url, before = prod
    warned = simple_flag("warned", rules=[rule(op="lessThan", values=[18, "63"])])
    path = tmp_path / "warned.json"
    path.write_text(json.dumps(warned))
    message = 'lessThan needs number values, got the string "63": this value never matches'
    line = f"warning: flags.warned.rules[0].clauses[0].values[1]: {message}"
    strict_env = {"RELAY_REDIS_URL": url, "RELAY_ENV": "prod", "RELAY_STRICT_WRITES": "true"}
    refused = CliRunner().invoke(main, ["flags", "set", str(path)], env=strict_env)  # the setting
    assert refused.exit_code == 2 and refused.output.startswith(line.replace("warning:", "error:")), refused.output
    assert "strict writes refuse this" in refused.output
    assert dump(url) == before
    written = CliRunner().invoke(main, ["flags", "set", str(path), "--no-strict"], env=strict_env)
    assert written.exit_code == 0, written.output
    lines = written.output.splitlines()
    assert lines[0].startswith("wrote warned (version 1") and lines[1] == line, lines  # after the result
    as_json = json.loads(relay(["flags", "toggle", "warned", "--off", "--json"], url).output)
    assert as_json["warnings"] == [{"path": "flags.warned.rules[0].clauses[0].values[1]", "message": message}]
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"flags": {"warned": warned, "ok": simple_flag("ok")}}))
    imported = relay(["flags", "import", str(doc)], url)
    assert imported.exit_code == 0 and imported.output.splitlines()[-1] == line, imported.output
    assert "imported 2 items" in imported.output  # (warned was toggled off since)
    assert relay(["flags", "import", str(doc), "--strict"], url).exit_code == 2
