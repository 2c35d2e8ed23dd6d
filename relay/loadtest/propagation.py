"""Kill-switch propagation: how long a change takes from its commit in Redis to every client.

Opens N real SSE connections (server-side `/all`, client-side `/eval` over many distinct contexts,
or a mix) against a relay node and, once every one has had its first event, flips a flag K times
through the real write path (or, with `via="api"`, a PATCH to the admin API), recording for every
connection and every flip the time from the commit — seen by this tool's own Redis subscriber, so
nobody's start-up is counted — to the event's arrival, and from the moment the flip was asked for
(the write path called, the request sent) to the event's arrival, the end to end a caller sees.
Also checks that every connection got every change, in order. If streams do not connect, it stops
before the first write (`streams.StreamsNotReady`).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import random
import re
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from relay.access.environments import Environment
from relay.config import Settings
from relay.errors import NotFoundError
from relay.loadtest import results, streams
from relay.loadtest.api_flip import ApiFlipError, ApiFlipper
from relay.loadtest.commits import CommitWatcher
from relay.loadtest.results import Report, StreamRecord
from relay.loadtest.sse_client import OnEvent, SSEConnection
from relay.runtime.gcpolicy import collector_off
from relay.store.storage import Storage, connect
from relay.store.writes import WritePath
from relay.wire.clientside import encode_context

__all__ = ["FLAG", "ApiFlipError", "Plan", "Report", "run"]

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
    allow_partial: bool = False  # measure the streams that connected instead of stopping
    via: str = "redis"  # redis: the write path, as `relay flags toggle` on Redis; api: PATCH to the admin API
    api_url: str | None = None  # the admin listener, for via="api"
    token: str | None = None  # a writer token for the env, for via="api"; never in the report


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, needed + 256)), hard))


async def _flag_state(writer: WritePath, env: str, key: str) -> bool | None:
    """The flag's current `on`, or None when it does not exist yet (a read: nothing is written)."""
    try:
        return bool((await writer.get_item(env, "flag", key))["on"])
    except NotFoundError:
        return None


async def _create_flag(writer: WritePath, env: str, key: str) -> int:
    """The flag the tool flips: on, with on/off variations, available to every SDK. Its version."""
    flag = {"key": key, "on": True, "variations": [False, True], "offVariation": 0, "fallthrough": {"variation": 1},
            "description": "Flipped by relay loadtest propagation.",
            "clientSideAvailability": {"usingEnvironmentId": True, "usingMobileKey": True}}  # fmt: skip
    return int((await writer.put_item(env, "flag", flag, comment="loadtest")).items[0]["version"])


async def _ensure_flag(writer: WritePath, env: str, key: str) -> bool:
    """The flag's current `on`, creating it first if need be (the soak test's set-up)."""
    on = await _flag_state(writer, env, key)
    if on is None:
        await _create_flag(writer, env, key)
        return True
    return on


def _connections(plan: Plan, environment: Environment, on_event: OnEvent, arrived: list[int]) -> list[SSEConnection]:
    """The streams to open, in order: connection i of a client run uses context i % plan.contexts."""
    rng = random.Random(7)
    contexts = [
        {"kind": "user", "key": f"loadtest-{i}", "plan": rng.choice(["free", "pro"])} for i in range(plan.contexts)
    ]
    conns = []
    for i in range(plan.connections):
        kind = plan.kind if plan.kind != "mix" else ("server" if i % 2 == 0 else "client")
        if kind == "server":
            url, headers = f"{plan.target}/all", {"Authorization": plan.sdk_key or ""}
        else:
            context = encode_context(contexts[i % plan.contexts])
            url, headers = f"{plan.target}/eval/{environment.client_side_id}/{context}", {}
        # Deferred parsing: each arrival is only timestamped while a flip is in flight (see sse_client).
        conns.append(SSEConnection(url, headers, on_event, label=kind, backlog=[], arrived=arrived))
    return conns


async def run(plan: Plan) -> Report:
    """Open the streams, check them, flip, measure. Raises `streams.StreamsNotReady` (nothing
    written) when streams failed, `results.NoSamples` when no stream saw any flip, and
    `ApiFlipError` when the admin API (`via="api"`) refused a flip or could not be reached."""
    if plan.kind != "client" and not plan.sdk_key:
        raise ValueError("server-side streams need an SDK key (--sdk-key)")
    if plan.via == "api" and not (plan.api_url and plan.token):
        raise ValueError("flips through the admin API need --api-url and --token")
    _raise_fd_limit(plan.connections)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    # Before anything is opened: a bad --api-url is refused with nothing to clean up.
    api = (
        ApiFlipper(plan.api_url or "", plan.token or "", plan.env, plan.flag, plan.timeout)
        if plan.via == "api"
        else None
    )
    storage = Storage(connect(Settings(redis_url=plan.redis_url), plan.redis_url), plan.prefix)
    writer = WritePath(storage, actor="loadtest")
    conns: list[SSEConnection] = []
    opened = streams.Opened(live=[])
    sent: dict[int, float] = {}  # version -> when its flip was asked for
    try:
        environment = await writer.environment(plan.env)
        on = await _flag_state(writer, plan.env, plan.flag)

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

        arrived = [0]  # pieces of data received by all connections together, not yet parsed
        conns = _connections(plan, environment, on_event, arrived)
        arrivals.update((c, []) for c in conns)

        def drain(some: list[SSEConnection]) -> None:
            for conn in some:
                conn.drain()

        bar = progress(plan.connections, "connecting", plan.progress)
        opened = await streams.open_all(conns, ready, plan.timeout, plan.connect_concurrency, bar, drain)
        if opened.failures and (not plan.allow_partial or not opened.live):
            raise streams.StreamsNotReady(len(conns), opened.failures, plan.kind == "mix")
        live = opened.live

        # Nothing is written before this point: every stream is live and has had its first event.
        if api is not None:
            await api.open()  # before the first flip: its set-up is not a sample
        watcher = CommitWatcher(plan.redis_url, storage.key(plan.env, "changes"), plan.flag)
        try:
            if on is None:
                on, created = True, await _create_flag(writer, plan.env, plan.flag)
                await _delivered(received, created, live, plan.timeout, drain)  # not a sample
                await asyncio.sleep(plan.interval)
            versions = await _flip(
                plan, _toggler(plan, writer, api), on, live, arrivals, received, arrived, drain, sent
            )
        finally:
            commits = watcher.stop()
        drain(live)
    finally:
        for task in opened.tasks:
            task.cancel()
        for conn in conns:
            conn.close()
        if api is not None:
            await api.close()
        await storage.close()
    index = {c: i for i, c in enumerate(conns)}
    records = [StreamRecord(index[c], c.label, arrivals[c], c.error is not None) for c in live]
    failed = dict(sorted(collections.Counter(opened.failures.values()).items()))
    plan_out = asdict(plan) | {"sdk_key": "****" if plan.sdk_key else None, "token": "****" if plan.token else None}
    return results.build(
        plan_out, records, versions, commits, started_at=started_at, connect_failures=failed, sent=sent
    )


Toggle = Callable[[bool], Awaitable[int]]


def _toggler(plan: Plan, writer: WritePath, api: ApiFlipper | None) -> Toggle:
    """One flip, the new version back: through the admin API, or the write path on Redis."""
    if api is not None:
        return api.toggle

    async def direct(on: bool) -> int:
        return int((await writer.toggle(plan.env, plan.flag, on, comment="loadtest flip")).items[0]["version"])

    return direct


async def _delivered(
    received: dict[int, int], version: int, live: list[SSEConnection], timeout: float, drain: streams.Drain
) -> None:
    deadline = time.monotonic() + timeout
    while received.get(version, 0) < len(live) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        drain(live)


async def _flip(
    plan: Plan,
    toggle: Toggle,
    on: bool,
    live: list[SSEConnection],
    arrivals: dict[SSEConnection, list[tuple[int, float]]],
    received: dict[int, int],
    arrived: list[int],
    drain: streams.Drain,
    sent: dict[int, float],
) -> list[int]:
    """Flip `plan.flips` times, each time until every live stream has the change (or timeout)."""
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
            drain(live)
            with collector_off():
                arrived[0] = 0
                asked = time.monotonic()  # the clock the arrivals and the commit watcher use
                version = await toggle(on)
                sent[version] = asked
                versions.append(version)
                deadline, step = time.monotonic() + plan.timeout, 0
                while received.get(version, 0) < len(live) and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
                    step += 1
                    # Parse once every connection has had bytes (or now and then): parsing while
                    # events are still arriving would delay reading them. What parsing finds decides.
                    if arrived[0] >= len(live) or step % 100 == 0:
                        drain(live)
                    if step % 100 == 0 and not _behind(live, arrivals, version):  # some connection failed
                        break
            await asyncio.sleep(plan.interval)
    finally:
        gc.unfreeze()
    return versions


def _behind(live: list[SSEConnection], arrivals: dict[SSEConnection, list[tuple[int, float]]], version: int) -> bool:
    return any(not arrivals[c] or arrivals[c][-1][0] < version for c in live if c.error is None)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, what: str, enabled: bool, unit: str = "conn") -> Any:
    """A tqdm bar of `total` `unit`s (its rate reads "conn/s", "item/s"), or one that shows nothing."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # the loadtest extra is not installed: no bar, same results
        return _NoBar()
    return tqdm(total=total, desc=what, unit=unit)
