"""Can Redis lose flags, or refuse their writes, for lack of memory? Read once at start, and now and then.

Flags and segments have no TTL, so `volatile-*` policies never evict them, and `noeviction` never
evicts anything; an `allkeys-*` policy evicts whatever it picks at maxmemory, flags included. With
a maxmemory, writes fail once Redis is full (a `volatile-*` policy with nothing volatile to evict
behaves as noeviction): relay's stored events, up to `events_max_bytes` per environment, must fit
beside the data, or flag writes depend on the write path freeing events (relay.store.events).
CONFIG GET may be refused (managed Redis services rename or forbid it): INFO's memory section
says the same; if neither answers, the warning says what to check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from relay.errors import RedisUnavailable
from relay.store.events import EventSink
from relay.store.storage import Storage
from relay.store.trouble import FAILURES, trouble

logger = logging.getLogger(__name__)
_MB = 1_048_576
ROOM = 0.9  # warn when data plus full event budgets would pass this share of maxmemory


@dataclass(frozen=True, slots=True)
class MemoryPolicy:
    maxmemory: int | None  # bytes; 0: no limit; None: unknown
    policy: str | None
    used: int | None  # used_memory, bytes
    refused: str = ""  # why CONFIG GET was not answered ("" if it was)


async def read_policy(storage: Storage) -> MemoryPolicy:
    """Redis's maxmemory and maxmemory-policy (CONFIG GET, else INFO memory) and its used memory.
    RedisUnavailable if Redis cannot be reached at all."""
    client, refused = storage.client, ""
    maxmemory: int | None = None
    policy: str | None = None
    try:
        config = await client.config_get("maxmemory*")
        maxmemory, policy = int(config["maxmemory"]), str(config["maxmemory-policy"])
    except (RedisError, KeyError, ValueError) as e:
        refused = f"{type(e).__name__}: {e}"
    try:
        info = await client.info("memory")
    except FAILURES as e:
        raise trouble(e, "reading its memory settings") from None
    if maxmemory is None and "maxmemory" in info:
        maxmemory = int(info["maxmemory"])
    if policy is None and "maxmemory_policy" in info:
        policy = str(info["maxmemory_policy"])
    used = int(info["used_memory"]) if "used_memory" in info else None
    return MemoryPolicy(maxmemory, policy, used, refused)


def policy_warnings(
    policy: MemoryPolicy, *, environments: int, events_max_bytes: int, events_stored: int | None
) -> list[str]:
    """What an operator must fix (docs/deployment.md, "Redis memory"). `events_stored`: the bytes
    of events stored now on this Redis, None if events live on another one."""
    out: list[str] = []
    if policy.policy is None or policy.maxmemory is None:
        out.append(
            f"could not read Redis's maxmemory-policy ({policy.refused or 'not in INFO'}): make sure it is "
            "noeviction or volatile-*, never allkeys-*, which evicts flags (docs/deployment.md)"
        )
        return out
    if policy.policy.startswith("allkeys-"):
        out.append(
            f"Redis's maxmemory-policy is {policy.policy}: at maxmemory Redis evicts any key, flags and "
            "segments included; set maxmemory-policy noeviction (docs/deployment.md)"
        )
    if policy.maxmemory and events_stored is not None and policy.used is not None:
        others = max(0, policy.used - events_stored)
        events = environments * events_max_bytes
        if others + events > ROOM * policy.maxmemory:
            out.append(
                f"Redis's maxmemory is {policy.maxmemory / _MB:.0f} MB with {others / _MB:.1f} MB used by data "
                f"other than events, and stored events may take up to {events / _MB:.0f} MB ({environments} "
                f"environments x events_max_bytes {events_max_bytes / _MB:.1f} MB): writes could fail for lack "
                "of memory (flag writes free events first); raise maxmemory, lower events_max_bytes, or set "
                "events_redis_url (docs/deployment.md)"
            )
    return out


async def memory_warnings(storage: Storage, events: EventSink | None, *, events_max_bytes: int) -> list[str]:
    """The warnings for the Redis behind `storage`; `events`: the sink if events live on it too."""
    policy = await read_policy(storage)
    try:
        envs = sorted(await storage.environments())
        stored = None if events is None else sum((await events.stored_bytes(envs)).values())
    except FAILURES as e:
        raise trouble(e, "reading its memory settings") from None
    return policy_warnings(policy, environments=len(envs), events_max_bytes=events_max_bytes, events_stored=stored)


async def watch(
    storage: Storage,
    events: EventSink | None,
    *,
    events_max_bytes: int,
    publish: Callable[[list[str]], None],
    interval: float = 300.0,
    retry: float = 10.0,
) -> None:
    """Forever: `memory_warnings` at start (retried every `retry` s while Redis cannot be read),
    then every `interval` s; each time they change, `publish(warnings)` and log each new one."""
    shown: list[str] | None = None
    while True:
        try:
            warnings = await memory_warnings(storage, events, events_max_bytes=events_max_bytes)
        except RedisUnavailable as e:
            logger.debug("could not read Redis's memory settings: %s (%s)", e, e.detail)
            await asyncio.sleep(retry)
            continue
        if warnings != shown:
            for warning in warnings:
                if shown is None or warning not in shown:
                    logger.warning("%s", warning)
            publish(warnings)
            shown = warnings
        await asyncio.sleep(interval)
