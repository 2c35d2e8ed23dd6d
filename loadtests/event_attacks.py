"""The event attacks of issue 17, measured: the figures of docs/reliability.md and docs/security.md.

    .venv/bin/python -m loadtests.event_attacks [--baseline DIR] [SCENARIO ...]

Each scenario starts its own redis-server and `python -m relay serve` on 127.0.0.1 and prints one
line. `--baseline DIR` runs the scenarios against another relay source tree too (a directory
holding a `relay` package, e.g. `git archive d5c6a73 relay | tar -x -C /tmp/base`), node and CLI
alike, before this tree's. Scenarios: flood, dedupe, starvation, errors, full, rate (default: all).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from relay.wire import codec
from tests.integration.helpers import demo_environment, run_async, storage_for
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess
from tests.integration.test_redis_trouble import _poster, _toggle_arrives

MB = 1_048_576
FLAG = "checkout-kill-switch"
SMALL = codec.dumps([{"kind": "custom", "key": "k", "creationDate": 1, "contextKeys": {"user": "u"}}])
GZIP = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
Outcome = int | str


def big_batch(n: int) -> bytes:
    """~1 MB of JSON, gzipped: 3,000 custom events from distinct contexts with 200 bytes of data each."""
    events = [
        {"kind": "custom", "key": "clicked", "creationDate": 1_718_000_000_000 + i,
         "contextKeys": {"user": f"user-{n:04d}-{i:05d}"}, "data": {"pad": "x" * 200}}
        for i in range(3000)
    ]  # fmt: skip
    return gzip.compress(codec.dumps(events))


def post(http: httpx.Client, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response | str:
    """The response, or "reset" when the node closed the connection (uvicorn does after a 500)."""
    try:
        return http.post(path, content=body, headers=headers)
    except httpx.HTTPError:
        return "reset"


def outcome(response: httpx.Response | str) -> Outcome:
    return response if isinstance(response, str) else response.status_code


def memory(url: str) -> tuple[int, int]:
    """Redis's used_memory and its number of keys."""

    async def read() -> tuple[int, int]:
        client = storage_for(url).client
        return int((await client.info("memory"))["used_memory"]), int(await client.dbsize())

    return run_async(read())


def config(url: str, **values: Any) -> None:
    async def apply() -> None:
        for name, value in values.items():
            await storage_for(url).client.config_set(name.replace("_", "-"), value)

    run_async(apply())


def cli(url: str, source: Path | None, *args: str) -> tuple[int, str, float]:
    env = {"RELAY_REDIS_URL": url, "PATH": "/usr/bin:/bin", **({"PYTHONPATH": str(source)} if source else {})}
    started = time.monotonic()
    # cwd elsewhere: `python -m` puts the working directory first on the path, before PYTHONPATH.
    done = subprocess.run(
        [sys.executable, "-m", "relay", *args], env=env, capture_output=True, text=True, timeout=60, cwd="/"
    )
    return done.returncode, done.stdout.strip() or done.stderr.strip(), time.monotonic() - started


class Run:
    """One scenario: a redis-server and the demo environment; `node()` starts relay on it."""

    def __init__(self, tmp: Path, source: Path | None) -> None:
        self.tmp, self.source = tmp / uuid.uuid4().hex[:8], source
        self.redis = RedisServer(self.tmp / "redis").start()
        self.secrets = demo_environment(self.redis.url)
        self.relay: RelayProcess | None = None

    def node(self, **settings: str) -> RelayProcess:
        self.relay = RelayProcess(self.redis.url, self.tmp / "relay", source=self.source, **settings).start()
        return self.relay

    @property
    def browser_path(self) -> str:
        return f"/events/bulk/{self.secrets['client_side_id']}"

    def close(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        self.redis.stop()


def flood(run: Run) -> str:
    config(run.redis.url, maxmemory=30 * MB, maxmemory_policy="noeviction")
    relay = run.node(events_rate_limit="0")
    before, _ = memory(run.redis.url)
    bodies = [big_batch(n) for n in range(300)]
    started = time.monotonic()
    with httpx.Client(base_url=relay.url, timeout=30) as http:
        codes = Counter(outcome(post(http, run.browser_path, body, GZIP)) for body in bodies)
    took = time.monotonic() - started
    grown = memory(run.redis.url)[0] - before
    json_mb = 300 * len(gzip.decompress(bodies[0])) / MB
    return (
        f"flood: 300 posts ({sum(map(len, bodies)) / MB:.1f} MB gzipped, {json_mb:.0f} MB of JSON) in {took:.1f} s: "
        f"{dict(codes)}; Redis +{grown / MB:.1f} MiB; {relay.log.read_text().count('Traceback')} tracebacks"
    )


def dedupe(run: Run, n: int = 20_000) -> str:
    relay = run.node(events_rate_limit="0")
    _, keys = memory(run.redis.url)

    def send(ids: range) -> None:
        with httpx.Client(base_url=relay.url, timeout=30) as http:
            for i in ids:
                post(http, run.browser_path, SMALL, {"X-LaunchDarkly-Payload-ID": str(uuid.UUID(int=i))})

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, [range(i, n, 8) for i in range(8)]))
    _, after = memory(run.redis.url)
    return f"dedupe: {n} posts with distinct payload IDs in {time.monotonic() - started:.1f} s: +{after - keys} keys"


def starvation(run: Run, posters: int = 400) -> str:
    fast = {"version_check_interval": "0.5", "reconnect_max_delay": "0.3", "redis_timeout": "2"}
    relay = run.node(events_rate_limit="0", **fast)

    async def scenario() -> tuple[Counter[int], int, float]:
        stop, codes = asyncio.Event(), Counter[int]()
        tasks = [asyncio.create_task(_poster(relay.url, run.browser_path, stop, codes)) for _ in range(posters)]
        stale = 0
        async with httpx.AsyncClient(base_url=relay.url, timeout=20) as http:
            await asyncio.sleep(1)
            for _ in range(8):
                run.redis.signal(signal.SIGSTOP)
                await asyncio.sleep(0.8)
                run.redis.signal(signal.SIGCONT)
                await asyncio.sleep(0.2)
                stale += bool((await http.get("/status")).json()["environments"]["prod"]["stale"])
            try:
                seconds = await _toggle_arrives(http, relay, run.redis.url, run.secrets["sdk_key"])
            except (TimeoutError, httpx.HTTPError):
                seconds = float("nan")
            stop.set()
            await asyncio.gather(*tasks)
        return codes, stale, seconds

    codes, stale, seconds = run_async(scenario())
    log = relay.log.read_text()
    return (
        f"starvation: {posters} keep-alive posters, Redis stalled 8 x 0.8 s: {dict(codes)} (0: connection reset); "
        f"stale in {stale}/8 samples; {log.count('lost Redis')} 'lost Redis'; {log.count('Traceback')} tracebacks; "
        f"a toggle arrived in {seconds * 1000:.0f} ms"
    )


def errors(run: Run) -> str:
    relay = run.node(events_rate_limit="0")
    with httpx.Client(base_url=relay.url, timeout=30) as http:
        config(run.redis.url, maxmemory=1)
        full = [post(http, run.browser_path, SMALL) for _ in range(1000)]
        config(run.redis.url, maxmemory=0)
        run.redis.stop()
        gone = [post(http, run.browser_path, SMALL) for _ in range(1000)]

    def kinds(responses: list[httpx.Response | str]) -> dict[Any, int]:
        return dict(
            Counter(
                r if isinstance(r, str) else (r.status_code, r.headers["content-type"], r.headers.get("retry-after"))
                for r in responses
            )
        )

    log = relay.log.read_text()
    return (
        f"errors: 1000 posts out of memory {kinds(full)}; 1000 with Redis stopped {kinds(gone)}; "
        f"the log: {len(log.splitlines())} lines, {log.count('Traceback')} tracebacks"
    )


def full(run: Run) -> str:
    used, _ = memory(run.redis.url)
    config(run.redis.url, maxmemory=used + 20 * MB, maxmemory_policy="noeviction")
    relay = run.node(events_rate_limit="0", events_max_bytes=str(64 * MB))
    stored, last = 0, None
    with httpx.Client(base_url=relay.url, timeout=30) as http:
        while stored < 500 and (last := outcome(post(http, run.browser_path, big_batch(stored), GZIP))) == 202:
            stored += 1
    time.sleep(3)  # Redis frees idle clients' query buffers; then pin it full, 1 MB over maxmemory
    config(run.redis.url, maxmemory=memory(run.redis.url)[0] - MB)
    code, out, seconds = cli(run.redis.url, run.source, "flags", "toggle", FLAG, "--off", "--env", "prod")
    return f"full Redis: {stored} posts stored, then {last}; `relay flags toggle` exit {code} in {seconds:.2f} s: {out}"


def rate(run: Run) -> str:
    relay = run.node()
    codes: Counter[Outcome] = Counter()
    started = time.monotonic()
    with httpx.Client(base_url=relay.url, timeout=30) as http:
        while time.monotonic() - started < 5:
            codes[outcome(post(http, run.browser_path, SMALL))] += 1
    return f"rate limit (defaults): one client-side ID posting for 5 s on one connection: {dict(codes)}"


SCENARIOS: dict[str, Callable[[Run], str]] = {
    "flood": flood, "dedupe": dedupe, "starvation": starvation, "errors": errors, "full": full, "rate": rate,
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another relay source tree to measure first")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)} (known: {', '.join(SCENARIOS)})")
    tmp = Path(tempfile.mkdtemp(prefix="event-attacks-"))
    trees = [("before", args.baseline)] if args.baseline else []
    for name in args.scenarios or SCENARIOS:
        for label, source in [*trees, ("this tree", None)]:
            run = Run(tmp, source)
            try:
                print(f"[{label}] {SCENARIOS[name](run)}", flush=True)
            finally:
                run.close()


if __name__ == "__main__":
    main()
