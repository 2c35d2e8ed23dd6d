"""Kill-switch propagation: how long a change takes from its commit in Redis to every client.

Opens N real SSE connections (server-side `/all`, client-side `/eval` over many distinct contexts,
or a mix) against a relay node, flips a flag K times through the real write path, and records for
every connection and every flip the time from the commit — seen by this tool's own Redis
subscriber, so nobody's start-up is counted — to the event's arrival. Also checks that every
connection got every change, in order.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import random
import re
import resource
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from relay.config import Settings
from relay.loadtest import commits
from relay.loadtest.sse_client import SSEConnection
from relay.runtime.gcpolicy import collector_off
from relay.store.storage import Storage, connect, watch_channel
from relay.store.writes import WritePath
from relay.wire import codec
from relay.wire.clientside import encode_context

FLAG = "loadtest-kill-switch"
VERSION = re.compile(rb'"version":(\d+)')


@dataclass
class Plan:
    target: str
    redis_url: str
    env: str
    sdk_key: str | None = None
    kind: str = "server"  # server, client or mix
    connections: int = 100
    contexts: int = 100
    flips: int = 5
    interval: float = 0.5
    flag: str = FLAG
    prefix: str = "relay"
    timeout: float = 30.0
    connect_concurrency: int = 200
    progress: bool = True


@dataclass
class Report:
    plan: dict[str, Any]
    connections: int
    flips: int
    samples: int
    missing: int
    out_of_order: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    histogram: list[tuple[float, int]] = field(default_factory=list)  # (upper bound ms, count)
    latencies_ms: list[float] = field(default_factory=list)
    # One row per flip, in order: {"version", "samples", "p50_ms", "p99_ms", "max_ms"}. A tail made
    # by one slow flip (a pause) and one that every flip shares (slow fan-out) look alike overall.
    per_flip: list[dict[str, float]] = field(default_factory=list)
    flip_p99_median_ms: float = float("nan")  # the typical flip's p99: one odd flip cannot move it

    @property
    def correct(self) -> bool:
        return self.missing == 0 and self.out_of_order == 0 and self.errors == 0


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round(p * (len(sorted_values) - 1)))]


def _histogram(values: list[float]) -> list[tuple[float, int]]:
    bounds = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, float("inf")]
    counts = [0] * len(bounds)
    for v in values:
        counts[next(i for i, b in enumerate(bounds) if v <= b)] += 1
    return list(zip(bounds, counts, strict=True))


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, needed + 256)), hard))


async def _ensure_flag(writer: WritePath, env: str, key: str) -> bool:
    """The flag the tool flips: on/off, available to every SDK. Returns its current `on`."""
    try:
        return bool((await writer.get_item(env, "flag", key))["on"])
    except Exception:
        flag = {"key": key, "on": True, "variations": [False, True], "offVariation": 0, "fallthrough": {"variation": 1},
                "description": "Flipped by relay loadtest propagation.",
                "clientSideAvailability": {"usingEnvironmentId": True, "usingMobileKey": True}}  # fmt: skip
        await writer.put_item(env, "flag", flag, comment="loadtest")
        return True


async def run(plan: Plan) -> Report:
    _raise_fd_limit(plan.connections)
    storage = Storage(connect(Settings(redis_url=plan.redis_url), plan.redis_url), plan.prefix)
    writer = WritePath(storage, actor="loadtest")
    environment = await writer.environment(plan.env)
    on = await _ensure_flag(writer, plan.env, plan.flag)

    commits: dict[int, float] = {}
    arrivals: dict[SSEConnection, list[tuple[int, float]]] = {}
    ready: set[SSEConnection] = set()
    received: dict[int, int] = {}  # version -> connections that got it (no O(n) scan per wait step)

    server_marker = f'"path":"/flags/{plan.flag}"'.encode()
    client_marker = f'{{"key":"{plan.flag}"'.encode()

    def on_event(conn: SSEConnection, name: str, data: bytes, now: float) -> None:
        if name == "put":
            ready.add(conn)
            return
        if name != "patch" or not (server_marker in data or data.startswith(client_marker)):
            return
        found = VERSION.search(data)  # the item's own version comes first in relay's canonical JSON
        if found:
            version = int(found.group(1))
            arrivals[conn].append((version, now))
            received[version] = received.get(version, 0) + 1

    watcher = _CommitWatcher(plan.redis_url, storage.key(plan.env, "changes"), plan.flag)
    rng = random.Random(7)
    plans = ["free", "pro"]
    contexts = [{"kind": "user", "key": f"loadtest-{i}", "plan": rng.choice(plans)} for i in range(plan.contexts)]
    conns: list[SSEConnection] = []
    arrived = [0]  # pieces of data received by all connections together, not yet parsed
    for i in range(plan.connections):
        kind = plan.kind if plan.kind != "mix" else ("server" if i % 2 == 0 else "client")
        if kind == "server":
            if not plan.sdk_key:
                raise SystemExit("server-side streams need --sdk-key")
            url, headers = f"{plan.target}/all", {"Authorization": plan.sdk_key}
        else:
            url, headers = (
                f"{plan.target}/eval/{environment.client_side_id}/{encode_context(contexts[i % plan.contexts])}",
                {},
            )
        # Deferred parsing: each arrival is only timestamped while a flip is in flight (see sse_client).
        conn = SSEConnection(url, headers, on_event, label=kind, backlog=[], arrived=arrived)
        arrivals[conn] = []
        conns.append(conn)

    bar = progress(plan.connections, "connecting", plan.progress)
    gate = asyncio.Semaphore(plan.connect_concurrency)
    tasks: list[asyncio.Task[None]] = []

    async def open_one(conn: SSEConnection) -> None:
        async with gate:
            try:
                await conn.open(plan.timeout)
                tasks.append(asyncio.create_task(conn.run()))
            except (OSError, ConnectionError, TimeoutError) as e:
                conn.error = f"{type(e).__name__}: {e}"
            bar.update(1)

    await asyncio.gather(*(open_one(c) for c in conns))
    bar.close()
    live = [c for c in conns if c.error is None]

    def drain() -> None:
        for conn in live:
            conn.drain()

    deadline = time.monotonic() + plan.timeout
    while len(ready) < len(live) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        drain()

    # The tool's own cyclic GC, walking 10,000 connections' objects, paused it for 100-170 ms in
    # a full collection: every arrival of the flip it fell in was timestamped that much late, and
    # one such flip in five made the run's p99. Set-up objects are frozen out of later passes, and
    # the collector only runs between flips.
    gc.collect()
    gc.freeze()
    versions: list[int] = []
    try:
        for _ in range(plan.flips):
            on = not on
            drain()
            with collector_off():
                arrived[0] = 0
                result = await writer.toggle(plan.env, plan.flag, on, comment="loadtest flip")
                version = int(result.items[0]["version"])
                versions.append(version)
                deadline, step = time.monotonic() + plan.timeout, 0
                while received.get(version, 0) < len(live) and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
                    step += 1
                    # Parse once every connection has had bytes (or now and then): parsing while
                    # events are still arriving would delay reading them. What parsing finds decides.
                    if arrived[0] >= len(live) or step % 100 == 0:
                        drain()
                    if step % 100 == 0 and not _behind(live, arrivals, version):  # some connection failed
                        break
            await asyncio.sleep(plan.interval)
    finally:
        gc.unfreeze()
    drain()

    for task in tasks:
        task.cancel()
    commits.update(watcher.stop())
    for conn in conns:
        conn.close()
    await storage.close()
    return _report(plan, conns, versions, commits, arrivals)


def _watch(url: str, channel: str, flag: str, out: Any, stop: Any) -> None:
    """In a process of its own: note when each change of `flag` arrives from Redis."""
    commits.prioritize()

    def on_message(data: bytes, now: float) -> None:
        body = codec.loads(data)
        if body.get("key") == flag:
            out.put((int(body["item"]["version"]), now))

    try:
        if not commits.watch(url, channel, on_message, stop.is_set, None):  # rediss://, sentinel: redis-py
            stop_watching = watch_channel(url, channel, on_message)
            stop.wait()
            stop_watching()
    finally:
        out.put(None)


class _CommitWatcher:
    """The commit times, taken in a separate process: the tool's own event loop, busy reading
    thousands of sockets, could otherwise delay them (CLOCK_MONOTONIC is shared by processes)."""

    def __init__(self, url: str, channel: str, flag: str) -> None:
        ctx = multiprocessing.get_context("fork")
        self._out, self._stop = ctx.Queue(), ctx.Event()
        self._process = ctx.Process(target=_watch, args=(url, channel, flag, self._out, self._stop), daemon=True)
        self._process.start()
        time.sleep(0.5)  # subscribed before the first flip

    def stop(self) -> dict[int, float]:
        self._stop.set()
        commits: dict[int, float] = {}
        while (item := self._out.get(timeout=10)) is not None:
            commits[item[0]] = item[1]
        self._process.join(5)
        return commits


def _behind(live: list[SSEConnection], arrivals: dict[SSEConnection, list[tuple[int, float]]], version: int) -> bool:
    return any(not arrivals[c] or arrivals[c][-1][0] < version for c in live if c.error is None)


def _report(
    plan: Plan,
    conns: list[SSEConnection],
    versions: list[int],
    commits: dict[int, float],
    arrivals: dict[SSEConnection, list[tuple[int, float]]],
) -> Report:
    by_flip: dict[int, list[float]] = {v: [] for v in versions}
    missing = out_of_order = 0
    for conn in conns:
        got = arrivals[conn]
        seen = [v for v, _ in got]
        if seen != sorted(seen):
            out_of_order += 1
        times = dict(got)
        for v in versions:
            if v not in times or v not in commits:
                missing += 1
            else:
                by_flip[v].append((times[v] - commits[v]) * 1000)
    values = sorted(x for flip in by_flip.values() for x in flip)
    per_flip = []
    for v, flip in by_flip.items():
        flip.sort()
        p50, p99 = _percentile(flip, 0.50), _percentile(flip, 0.99)
        top = flip[-1] if flip else float("nan")
        per_flip.append({"version": v, "samples": len(flip), "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
                         "max_ms": round(top, 3)})  # fmt: skip
    return Report(
        plan=asdict(plan) | {"sdk_key": "****" if plan.sdk_key else None},
        connections=len(conns),
        flips=len(versions),
        samples=len(values),
        missing=missing,
        out_of_order=out_of_order,
        errors=sum(1 for c in conns if c.error is not None and not arrivals[c]),
        p50_ms=round(_percentile(values, 0.50), 3),
        p90_ms=round(_percentile(values, 0.90), 3),
        p99_ms=round(_percentile(values, 0.99), 3),
        max_ms=round(values[-1], 3) if values else float("nan"),
        mean_ms=round(statistics.fmean(values), 3) if values else float("nan"),
        histogram=_histogram(values),
        latencies_ms=[round(v, 3) for v in values],
        per_flip=per_flip,
        flip_p99_median_ms=round(statistics.median(f["p99_ms"] for f in per_flip), 3) if per_flip else float("nan"),
    )


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, what: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # the loadtest extra is not installed: no bar, same results
        return _NoBar()
    return tqdm(total=total, desc=what, unit="conn")
