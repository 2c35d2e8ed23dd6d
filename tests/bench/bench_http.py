"""HTTP benchmark: relay's `evalx` (100 flags, distinct contexts) against a bare Starlette endpoint
returning a static body of the same size, same server settings, in the same run.

    python -m tests.bench.bench_http [--seconds 10] [--connections 32] [--rounds 3] [--baseline DIR]

Needs `wrk` (Debian package). One relay process (one uvicorn worker), the bare app likewise, wrk
with one thread; all on this machine, loopback only. Each round measures bare then relay, the
next relay then bare, and so on, and each round's ratio is reported with their median: this shared
machine's speed moves between runs, and a ratio from adjacent runs moves much less.
`--baseline DIR` adds a relay run from another source tree (e.g. `git worktree add /tmp/base
<commit>`) to every round, on the same Redis and data, for a before/after of a change.
On Linux each run also reports the server's CPU time per request (from /proc): both servers are
CPU-bound here, so its ratio tracks the throughput ratio, and it shows whether a slow round was
the server working harder or getting less of the machine.
Not a test: nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from relay.loadtest.seed import ruleset
from relay.store.writes import WritePath
from tests.integration.helpers import b64, run_async, storage_for
from tests.integration.redis_server import RedisServer, free_port
from tests.integration.relay_process import RelayProcess

BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
BODY = open({body!r}, "rb").read()
async def static(request):
    return Response(BODY, media_type="application/json")
app = Starlette(routes=[Route("/sdk/evalx/{{env}}/contexts/{{ctx}}", static)])
"""

WRK_SCRIPT = """
paths = {{}}
for line in io.lines("{paths}") do paths[#paths + 1] = line end
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""


def _cpu_seconds(pid: int) -> float | None:
    """The process's user + system CPU time so far (Linux), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_ratio(name: str, reference: dict[str, float], run: dict[str, float]) -> dict[str, float]:
    """`reference`'s CPU time per request over `run`'s: the throughput ratio were each server given
    a whole core (CPU time excludes time the VM's host gave to others, which moves wall-clock
    throughput 2x between runs here). Empty without CPU figures."""
    if "cpu_us_per_request" not in reference or "cpu_us_per_request" not in run:
        return {}
    return {name: round(reference["cpu_us_per_request"] / run["cpu_us_per_request"], 3)}


def _pid(process: RelayProcess) -> int:
    assert process.proc is not None
    return process.proc.pid


def _wrk(url: str, script: Path, seconds: int, connections: int, pid: int | None = None) -> dict[str, float]:
    """wrk's throughput and latency; with `pid`, also the server's CPU time per request."""
    cpu_before = None if pid is None else _cpu_seconds(pid)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    result = {"requests_per_second": rps, "p50_ms": ms("50"), "p99_ms": ms("99")}
    cpu_after = None if pid is None else _cpu_seconds(pid)
    if cpu_before is not None and cpu_after is not None:
        requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        result["cpu_us_per_request"] = round((cpu_after - cpu_before) / requests * 1e6, 1)
    return result


async def seeded_environment(redis_url: str, contexts: int) -> tuple[str, list[str]]:
    """An environment "bench" with 100 seeded flags (all browser-visible) and 10 segments; its
    client-side ID and `contexts` evalx GET paths, each with a distinct context."""
    admin = WritePath(storage_for(redis_url), actor="bench")
    _, secrets = await admin.create_environment("bench")
    doc = ruleset(100, 10, seed=1)
    for f in doc["flags"].values():
        f["clientSideAvailability"] = {"usingEnvironmentId": True, "usingMobileKey": True}
    await admin.import_items("bench", doc)
    env_id = secrets["client_side_id"]
    plans = ["free", "pro", "enterprise"]
    return env_id, [
        f"/sdk/evalx/{env_id}/contexts/"
        + b64({"kind": "user", "key": f"user-{i}", "plan": plans[i % 3], "email": f"u{i}@example.com",
               "age": 18 + i % 60, "appVersion": f"2.{i % 9}.0", "address": {"country": ["DE", "US"][i % 2]}})
        for i in range(contexts)
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--contexts", type=int, default=10000, help="distinct contexts (1 = one repeated context)")
    parser.add_argument("--no-cache", action="store_true", help="turn relay's evalx response cache off")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/relay rounds")
    parser.add_argument("--baseline", type=Path, help="another relay source tree, measured in every round too")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        redis = RedisServer(tmp / "redis").start()
        try:
            _, paths = run_async(seeded_environment(redis.url, args.contexts))
            cache = "0" if args.no_cache else "10000"
            relay = RelayProcess(redis.url, tmp / "relay", log_level="warning", response_cache_entries=cache).start()
            baseline = None
            if args.baseline:
                source = args.baseline.resolve()
                baseline = RelayProcess(
                    redis.url, tmp / "baseline", source, log_level="warning", response_cache_entries=cache
                ).start()
            (tmp / "paths.txt").write_text("\n".join(paths) + "\n")
            script = tmp / "paths.lua"
            script.write_text(WRK_SCRIPT.format(paths=tmp / "paths.txt"))
            body = urllib.request.urlopen(relay.url + paths[0]).read()
            (tmp / "body.json").write_bytes(body)
            (tmp / "bare.py").write_text(BARE_APP.format(body=str(tmp / "body.json")))
            bare_port = free_port()
            bare = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "bare:app", "--port", str(bare_port), "--loop", "uvloop",
                 "--http", "httptools", "--log-level", "warning", "--no-access-log"],
                cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.5)
            try:
                rounds = []
                for i in range(args.rounds):
                    # bare, relay, baseline; then baseline, relay, bare: no target always goes first
                    targets = {"bare": (f"http://127.0.0.1:{bare_port}", bare.pid), "relay": (relay.url, _pid(relay))}
                    if baseline is not None:
                        targets["baseline"] = (baseline.url, _pid(baseline))
                    order = list(targets) if i % 2 == 0 else list(targets)[::-1]
                    runs = {}
                    for name in order:
                        url, pid = targets[name]
                        runs[name] = _wrk(url, script, args.seconds, args.connections, pid)
                    bare_run, relay_run = runs["bare"], runs["relay"]
                    ratio = relay_run["requests_per_second"] / bare_run["requests_per_second"]
                    rounds.append({"bare_static": bare_run, "relay_evalx": relay_run, "ratio": round(ratio, 3)})
                    rounds[-1] |= _cpu_ratio("cpu_ratio", bare_run, relay_run)
                    if baseline is not None:
                        base_run = runs["baseline"]
                        base_rps = base_run["requests_per_second"]
                        rounds[-1] |= {
                            "baseline_evalx": base_run,
                            "baseline_ratio": round(base_rps / bare_run["requests_per_second"], 3),
                            "relay_vs_baseline": round(relay_run["requests_per_second"] / base_rps, 3),
                        }
                        rounds[-1] |= _cpu_ratio("cpu_relay_vs_baseline", base_run, relay_run)
            finally:
                bare.terminate()
                relay.stop()
                if baseline is not None:
                    baseline.stop()
        finally:
            redis.stop()
    median = statistics.median(r["ratio"] for r in rounds)
    summary = {"flags": 100, "body_bytes": len(body), "contexts": args.contexts, "connections": args.connections,
               "cache": not args.no_cache, "rounds": rounds, "median_ratio": median}  # fmt: skip
    names = ["cpu_ratio", "baseline_ratio", "relay_vs_baseline", "cpu_relay_vs_baseline"]
    for name in names:
        if all(name in r for r in rounds):
            summary[f"median_{name}"] = statistics.median(r[name] for r in rounds)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    cache = "off" if args.no_cache else "on"
    print(f"evalx, 100 flags, {args.contexts} contexts, cache {cache}, {args.connections} connections, {len(body)} B")
    for i, r in enumerate(rounds, 1):
        for name in ("bare_static", "relay_evalx", "baseline_evalx"):
            if name not in r:
                continue
            w = r[name]
            rps, p50, p99 = w["requests_per_second"], w["p50_ms"], w["p99_ms"]
            cpu = f"  CPU {w['cpu_us_per_request']:.0f} us/request" if "cpu_us_per_request" in w else ""
            print(f"  {i} {name:<14} {rps:>9.0f} req/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms{cpu}")
        cpu = f" (by CPU time per request: {r['cpu_ratio']:.2f})" if "cpu_ratio" in r else ""
        print(f"    relay / bare = {r['ratio']:.2f}{cpu}")
        if "baseline_ratio" in r:
            cpu = f" (by CPU time: {r['cpu_relay_vs_baseline']:.2f})" if "cpu_relay_vs_baseline" in r else ""
            base, vs = r["baseline_ratio"], r["relay_vs_baseline"]
            print(f"    baseline / bare = {base:.2f}, relay / baseline = {vs:.2f}{cpu}")
    print(f"  median relay / bare = {median:.2f}  (target >= 0.33)")
    labels = {
        "cpu_ratio": "relay / bare by CPU time per request",
        "baseline_ratio": "baseline / bare",
        "relay_vs_baseline": "relay / baseline",
        "cpu_relay_vs_baseline": "relay / baseline by CPU time",
    }
    for name, label in labels.items():
        if f"median_{name}" in summary:
            print(f"  median {label} = {summary[f'median_{name}']:.2f}")


if __name__ == "__main__":
    main()
