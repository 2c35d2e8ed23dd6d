"""The capped audit log says where it was trimmed (`relay audit`, relay.store.audit_history, /status),
and `relay audit export` archives all of it: on Redis 6.2 (inferred) and Redis 7+ (counted)."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis as redis_lib
from click.testing import CliRunner, Result

from relay.cli import main
from relay.config import Settings
from relay.store import audit_history
from relay.store.storage import Storage, connect
from relay.store.writes import WritePath
from tests.integration.helpers import run_async, simple_flag
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess

CAP = 50


def _redis_7() -> str | None:
    """A redis-server 7+ on PATH (XINFO STREAM counts entries added), if there is one."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    version = out.split("v=", 1)[1].split(".", 1)[0] if "v=" in out else "0"
    return binary if version.isdigit() and int(version) >= 7 else None


@pytest.fixture(params=["relay's redis-server", "redis 7+"])
def redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    binary = None
    if request.param == "redis 7+":
        binary = _redis_7()
        if binary is None:
            pytest.skip("no redis-server 7+ on PATH (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path / "redis", binary=binary).start()
    yield server
    server.stop()


def _relay(args: list[str], url: str) -> Result:
    env = {"RELAY_REDIS_URL": url, "RELAY_AUDIT_MAX_ENTRIES": str(CAP), "RELAY_ENV": "prod"}
    return CliRunner().invoke(main, args, env=env)


def _storage(url: str) -> Storage:
    return Storage(connect(Settings(redis_url=url), url), audit_max=CAP)


def _write(url: str, writes: int) -> None:
    async def go() -> None:
        storage = _storage(url)
        admin = WritePath(storage, actor="ops")
        await admin.create_environment("prod")
        for i in range(writes):
            await admin.put_item("prod", "flag", simple_flag(f"a{i}"))
        await storage.close()

    run_async(go())


def test_a_trimmed_audit_log_says_so_where_the_answer_reaches_it(
    redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(redis.url, 210)  # + the environment's creation: 211 entries written, the cap 50

    async def trim() -> audit_history.AuditTrim:
        storage = _storage(redis.url)
        try:
            return await audit_history.trim(storage, "prod")
        finally:
            await storage.close()

    found = run_async(trim())
    assert found.trimmed and found.cap == CAP and CAP <= found.entries < 211 and found.first_ms is not None
    notice = "was trimmed (cap 50)"

    gone = _relay(["audit", "--flag", "a0"], redis.url)  # its only change was trimmed
    assert gone.exit_code == 0 and gone.stdout.startswith("history before ") and notice in gone.stdout
    kept = _relay(["audit", "--flag", "a209"], redis.url)
    assert "create flag a209" in kept.stdout and notice in kept.stdout  # all it has: older changes may be gone
    page = _relay(["audit"], redis.url)  # 50 newest of 57 or so: the answer does not reach the trim
    assert page.stdout.count(" create flag ") == 50 and notice not in page.output
    everything = _relay(["audit", "--limit", "1000"], redis.url)
    assert everything.stdout.count(" create flag ") == found.entries and notice in everything.stdout
    after_first = datetime.fromtimestamp((found.first_ms + 1) / 1000, UTC).isoformat()
    later = _relay(["audit", "--limit", "1000", "--since", after_first], redis.url)  # after the oldest kept one
    assert notice not in later.output

    as_json = _relay(["audit", "--json", "--limit", "1000"], redis.url)
    entries = json.loads(as_json.stdout)  # the notice is on stderr: stdout stays JSON
    assert notice in as_json.stderr and len(entries) == found.entries
    assert isinstance(entries[0]["time"], int) and entries[0]["version"] == 210 and entries[0]["key"] == "a209"

    archive = tmp_path / "audit.jsonl"
    exported = _relay(["audit", "export", "--env", "prod", str(archive)], redis.url)
    assert exported.exit_code == 0, exported.output
    assert f"exported {found.entries} audit entries of prod" in exported.stderr and notice in exported.stderr
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    assert [e["key"] for e in lines] == [f"a{i}" for i in range(210 - found.entries, 210)]  # oldest first
    assert lines == entries[::-1]
    assert _relay(["audit", "export", "--env", "nope", str(archive)], redis.url).exit_code == 3


def test_an_untrimmed_audit_log_says_nothing_and_exports_whole(
    redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(redis.url, 40)
    result = _relay(["audit", "--flag", "a0"], redis.url)
    assert "create flag a0" in result.stdout and "trimmed" not in result.output
    exported = _relay(["audit", "export", "-"], redis.url)
    lines = exported.stdout.splitlines()
    assert len(lines) == 41 and json.loads(lines[0])["action"] == "env-create"
    assert "trimmed" not in exported.stderr


def test_the_audit_cap_is_in_status(redis_server: RedisServer, tmp_path: Path) -> None:
    relay = RelayProcess(redis_server.url, tmp_path / "relay", audit_max_entries=str(CAP)).start()
    try:
        with urllib.request.urlopen(f"{relay.url}/status", timeout=5) as r:
            assert json.loads(r.read())["audit"] == {"max_entries": CAP}
    finally:
        relay.stop()


def test_a_key_rotation_is_not_shown_as_a_creation(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only flags and segments have a before and an after to compare: any other entry (an
    # environment's key rotation, a token's, as the admin API audits them) is its action alone.
    monkeypatch.chdir(tmp_path)
    url = redis_server.url
    assert _relay(["env", "create", "prod"], url).exit_code == 0
    assert _relay(["env", "rotate-key", "prod", "--sdk", "--grace", "0s"], url).exit_code == 0
    fields = {"version": "", "time": "1", "actor": "ops", "action": "rotate", "kind": "token", "key": "tok_1"}
    redis_lib.Redis.from_url(url).xadd("relay:prod:audit", {**fields, "comment": "", "before": "", "after": ""})
    shown = _relay(["audit"], url)
    assert "rotate-sdk-key environment prod" in shown.stdout and "rotate token tok_1" in shown.stdout
    assert "created" not in shown.stdout, shown.stdout
