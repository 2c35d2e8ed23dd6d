"""The load-testing tools, small: propagation (correctness, not speed), the floor, and seeding."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from relay.cli import main
from relay.loadtest import plot, propagation, report
from tests.integration.helpers import demo_environment, run_async, storage_for
from tests.integration.redis_server import RedisServer, free_port
from tests.integration.relay_process import RelayProcess

Node = tuple[RelayProcess, RedisServer, dict[str, str]]


def _propagation(redis_url: str, *args: str) -> Any:
    """`relay loadtest propagation --env prod … ARGS` through the CLI, small and quick."""
    base = ["loadtest", "propagation", "--env", "prod", "--connections", "20", "--flips", "2", "--interval", "0.05"]
    return CliRunner().invoke(main, [*base, "--timeout", "10", *args], env={"RELAY_REDIS_URL": redis_url})


def _flag_and_audit(redis_url: str) -> tuple[int | None, int]:
    """The kill-switch flag's version (None: absent) and the length of prod's audit log."""

    async def read() -> tuple[int | None, int]:
        storage = storage_for(redis_url)
        raw = (await storage.items("prod", "flag", [propagation.FLAG]))[propagation.FLAG]
        return (json.loads(raw)["version"] if raw else None), len(await storage.audit("prod"))

    return run_async(read())


def test_propagation_smoke_every_connection_gets_every_change_in_order(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    secrets = demo_environment(redis_server.url)
    relay = RelayProcess(redis_server.url, tmp_path / "relay").start()
    try:
        plan = propagation.Plan(
            target=relay.url, redis_url=redis_server.url, env="prod", sdk_key=secrets["sdk_key"], kind="mix",
            connections=50, contexts=10, flips=3, interval=0.05, timeout=20, progress=False,
        )  # fmt: skip
        result = asyncio.run(propagation.run(plan))
        assert result.correct, report.text(result)
        assert result.connections == 50 and result.flips == 3 and result.samples == 150
        # The tool's commit watcher and relay's subscriber are two subscribers woken by one PUBLISH;
        # which runs first is the scheduler's choice, so a sample can be a fraction of a millisecond
        # below zero (CI saw -0.08 ms). A clock taken in the wrong place was off by up to 5 ms.
        assert -1.0 <= result.latencies_ms[0] <= result.p50_ms <= result.p99_ms <= result.max_ms
        assert [f["samples"] for f in result.per_flip] == [50, 50, 50]
        assert max(f["max_ms"] for f in result.per_flip) == result.max_ms
        flip_p99s = sorted(f["p99_ms"] for f in result.per_flip)
        assert result.flip_p99_median_ms == flip_p99s[1]
        assert "per flip (version: p50 / p99 / max ms; median of the flips' p99" in report.text(result)
        plot.write(result, tmp_path / "plot.html")
        assert "<svg" in (tmp_path / "plot.html").read_text()
        assert "correctness: missing 0, out of order 0, failed connections 0  OK" in report.text(result)
    finally:
        relay.stop()


def test_a_wrong_port_stops_before_flipping_and_says_connection_refused(redis_server: RedisServer) -> None:
    secrets = demo_environment(redis_server.url)
    before = _flag_and_audit(redis_server.url)
    result = _propagation(
        redis_server.url, "--target", f"http://127.0.0.1:{free_port()}", "--sdk-key", secrets["sdk_key"]
    )
    assert result.exit_code == 6, result.output
    assert "0 of 20 streams connected: connection refused (20)" in result.output
    assert "nothing was flipped" in result.output and "nan" not in result.output
    assert _flag_and_audit(redis_server.url) == before == (None, before[1])  # not even created


def test_a_wrong_key_stops_before_flipping_and_says_401(demo_node: Node) -> None:
    relay, redis, _ = demo_node
    created = _propagation(redis.url, "--target", relay.url, "--kind", "client")  # the flag exists from here on
    assert created.exit_code == 0, created.output
    before = _flag_and_audit(redis.url)
    result = _propagation(redis.url, "--target", relay.url, "--sdk-key", "sdk-wrong")
    assert result.exit_code == 6, result.output
    assert "0 of 20 streams connected: 401 unauthorized (20)" in result.output
    assert "nan" not in result.output
    assert _flag_and_audit(redis.url) == before and before[0] is not None

    # A mix with a wrong SDK key: the client half connects, the server half does not. Still stopped…
    result = _propagation(redis.url, "--target", relay.url, "--sdk-key", "sdk-wrong", "--kind", "mix")
    assert result.exit_code == 6, result.output
    assert "10 of 20 streams connected: 401 unauthorized (10 server)" in result.output
    assert _flag_and_audit(redis.url) == before
    # … unless the operator asks for the streams that did connect to be measured.
    result = _propagation(
        redis.url, "--target", relay.url, "--sdk-key", "sdk-wrong", "--kind", "mix", "--allow-partial"
    )
    assert result.exit_code == 0, result.output
    assert "10 connections (mix) + 10 not connected, left out (--allow-partial): 401 unauthorized (10)" in result.output
    assert _flag_and_audit(redis.url)[0] == before[0] + 2


def _token(redis_url: str, *args: str) -> dict[str, Any]:
    made = CliRunner().invoke(
        main, ["tokens", "create", "--name", "bench", "--json", *args], env={"RELAY_REDIS_URL": redis_url}
    )
    assert made.exit_code == 0, made.output
    return json.loads(made.stdout)  # type: ignore[no-any-return]


def test_flips_through_the_admin_api_are_measured_from_request_and_commit(demo_node: Node, tmp_path: Path) -> None:
    relay, redis, secrets = demo_node
    token = _token(redis.url, "--role", "writer", "--env", "prod")
    base = ["--target", relay.url, "--sdk-key", secrets["sdk_key"], "--via", "api", "--api-url", relay.admin_url]
    result = _propagation(redis.url, *base, "--token", token["token"], "--report", str(tmp_path / "api.json"))
    assert result.exit_code == 0, result.output
    assert "asked -> event (api): p50" in result.output and token["token"] not in result.output
    data = json.loads((tmp_path / "api.json").read_text())
    assert data["samples"] == 40 and data["missing"] == 0 and data["plan"]["via"] == "api"
    assert data["plan"]["token"] == "****" and token["token"] not in (tmp_path / "api.json").read_text()
    # The request is sent before the commit, and the commit is seen before the events: asked -> event
    # covers the API's own path (auth, validation, the write) on top of commit -> event.
    assert data["request_to_commit"]["p50_ms"] > 0
    assert data["end_to_end"]["p50_ms"] >= data["p50_ms"]
    entries = run_async(storage_for(redis.url).audit("prod"))
    flips = [e for e in entries if e.get("key") == propagation.FLAG][:2]
    assert [(e["actor"], e.get("via"), e.get("token")) for e in flips] == [("bench", "api", token["id"])] * 2

    # The write path, for comparison, reports the same figures, from the call.
    result = _propagation(redis.url, "--target", relay.url, "--sdk-key", secrets["sdk_key"])
    assert result.exit_code == 0 and "asked -> event (redis): p50" in result.output, result.output

    # A token that may not write: the API's refusal, and exit 1; and the option's usage.
    reader = _token(redis.url, "--role", "reader")
    refused = _propagation(redis.url, *base, "--token", reader["token"])
    assert refused.exit_code == 1 and "HTTP 403" in refused.output, refused.output
    usage = _propagation(redis.url, "--target", relay.url, "--sdk-key", secrets["sdk_key"], "--via", "api")
    assert usage.exit_code == 2 and "--api-url and --token" in usage.output, usage.output


def test_a_run_writes_every_sample_and_the_plots(demo_node: Node, tmp_path: Path) -> None:
    relay, redis, secrets = demo_node
    files = [tmp_path / name for name in ("run.json", "run.png", "run.html")]
    result = _propagation(
        redis.url, "--target", relay.url, "--sdk-key", secrets["sdk_key"], "--kind", "mix",
        "--report", str(files[0]), "--plot", str(files[1]), "--plot", str(files[2]),
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    def strict(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON report")

    data = json.loads(files[0].read_text(), parse_constant=strict)
    assert data["connections"] == 20 and data["samples"] == 40 and data["p50_ms"] <= data["p99_ms"]  # kept
    assert len(data["latencies_ms"]) == 40 and [f["flip"] for f in data["per_flip"]] == [1, 2]
    rows = data["deliveries"]
    assert {(r["flip"], r["connection"]) for r in rows} == {(f, c) for f in (1, 2) for c in range(20)}
    assert {r["connection"]: r["kind"] for r in rows} == {c: "server" if c % 2 == 0 else "client" for c in range(20)}
    assert sorted(r["ms"] for r in rows) == data["latencies_ms"] and data["missed"] == []
    assert set(data["per_kind"]) == {"client", "server"} and data["per_kind"]["server"]["samples"] == 20

    png = files[1].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width == 2000 and 1000 <= height <= 2000, (width, height)  # 10 in wide at 2x
    assert 20_000 < len(png) < 400_000
    page = files[2].read_text()
    assert "<svg" in page and "<script" not in page and "<?xml" not in page
    assert "flip 2" in page and relay.url in page


def test_the_reference_floor_is_measured_by_the_same_tool(redis_server: RedisServer, tmp_path: Path) -> None:
    demo_environment(redis_server.url)
    port = free_port()
    env = {**os.environ, "RELAY_REDIS_URL": redis_server.url}
    floor = subprocess.Popen(
        [sys.executable, "-m", "relay", "loadtest", "floor", "--env", "prod", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the floor server did not start"
                time.sleep(0.05)
        time.sleep(0.3)  # its Redis subscription follows the listening socket
        plan = propagation.Plan(
            target=f"http://127.0.0.1:{port}", redis_url=redis_server.url, env="prod", sdk_key="unused",
            connections=20, flips=2, interval=0.05, timeout=20, progress=False,
        )  # fmt: skip
        result = asyncio.run(propagation.run(plan))
        assert result.correct and result.samples == 40, report.text(result)
    finally:
        floor.terminate()
        floor.wait(10)


def test_seed_writes_a_valid_ruleset_through_the_write_path(redis_server: RedisServer) -> None:
    demo_environment(redis_server.url)
    result = CliRunner().invoke(
        main,
        ["loadtest", "seed", "--env", "prod", "--flags", "120", "--segments", "8", "--batch", "50"],
        env={"RELAY_REDIS_URL": redis_server.url},
    )
    assert result.exit_code == 0, result.output
    assert "seeded prod: 120 flags, 8 segments (128 items written)" in result.output

    async def count() -> tuple[int, int, list[str]]:
        storage = storage_for(redis_server.url)
        flags = [k for k in await storage.all_items("prod", "flag") if k.startswith("loadtest-flag-")]
        audit = await storage.audit("prod", count=5)
        return len(flags), len(await storage.all_items("prod", "segment")), [e["comment"] for e in audit]

    flags, segments, comments = run_async(count())
    assert flags == 120 and segments == 9 and comments[0] == "loadtest seed"
    ops = {
        c["op"]
        for f in json.loads(
            CliRunner()
            .invoke(main, ["flags", "export", "--env", "prod"], env={"RELAY_REDIS_URL": redis_server.url})
            .output
        )["flags"].values()
        for r in f["rules"]
        for c in r["clauses"]
    }
    assert len(ops) >= 12  # every kind of operator shows up


def test_relay_vs_floor_script_runs_both_and_reports_correctness(tmp_path: Path) -> None:
    """loadtests/relay_vs_floor.sh, the script behind docs/benchmarks.md's propagation figures, small."""
    script = Path(__file__).resolve().parents[2] / "loadtests" / "relay_vs_floor.sh"
    env = os.environ | {
        "RELAY_BIN": str(Path(sys.executable).parent),
        "REDIS_PORT": str(free_port()),
        "RELAY_PORT_UNDER_TEST": str(free_port()),
        "FLOOR_PORT": str(free_port()),
        "OUT": str(tmp_path),
    }
    args = ["bash", str(script), "20", "2", "0.1", "1"]  # 20 streams, 2 flips 0.1 s apart, one pair
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "streams:" in line]
    assert [line.split()[0] for line in lines] == ["relay", "floor"], done.stdout
    assert all("missing 0, out of order 0, failed 0" in line for line in lines), done.stdout
    assert json.loads((tmp_path / "relay-20-1.json").read_text())["samples"] == 40
