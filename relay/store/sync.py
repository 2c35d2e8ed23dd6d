"""A relay node's subscriber: keeps every environment's ruleset current from Redis.

SUBSCRIBE first, then load everything, then apply messages newer than the load, in data-version
order: duplicates are ignored and a gap triggers a full resync whose diff is reported as changes.
Losing Redis never stops the node serving: rulesets are kept and marked stale, the subscriber
reconnects with backoff and jitter, and resyncs in full. A periodic data-version check catches
anything pub/sub dropped silently. New environments are picked up as they appear.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from relay.access.environments import RESERVED_ENV_KEYS, Environment
from relay.errors import RelayError, ValidationError
from relay.evaluation import Flag, Segment, parse_flag, parse_segment
from relay.evaluation.evaluator import FUSE_AFTER
from relay.runtime.gcpolicy import collector_off
from relay.store.ruleset import Applied, Ruleset
from relay.store.state import State
from relay.store.storage import RedisError, Storage
from relay.wire import codec
from relay.wire.changes import Change, deleted_environment, read_message

logger = logging.getLogger(__name__)

ChangeListener = Callable[[str, list[Change]], None]
ResetListener = Callable[[str], None]
MISSING = "the environment is missing from Redis"


def compile_item(kind: str, raw: bytes | dict[str, Any], where: str) -> Flag | Segment:
    data = codec.loads(raw, what=where) if isinstance(raw, bytes) else raw
    parse = parse_flag if kind == "flag" else parse_segment
    return parse(data, path=where, strict=False, trusted=True)  # relay validated it when writing it


async def _compile_bodies(rs: Ruleset, chunk: int = 200) -> None:
    """Compile every flag body of a ruleset, a chunk at a time, yielding to requests in between."""
    pending = [f for f in rs.flags.values() if not f.deleted and not f.compiled]
    for i in range(0, len(pending), chunk):
        with collector_off():  # many long-lived objects, no cycles worth collecting
            for flag in pending[i : i + chunk]:
                flag.body  # noqa: B018 - compiles it
        await asyncio.sleep(0)
    gc.freeze()


def _log_applied(change: Change) -> None:
    """One change as a node applied it, and how long after its write (the writer's clock, so only
    as exact as the clocks agree)."""
    item = change.item
    verb = "deleted" if item.deleted else "applied"
    if change.written_ms is None:
        after = ""
    else:
        after = f", {max(time.time() * 1000 - change.written_ms, 0):.0f} ms after the write"
    logger.info(
        "%s: %s %s %s (version %d, data version %d)%s",
        change.env,
        verb,
        change.kind,
        change.key,
        item.version,
        change.version,
        after,
    )


class Sync:
    """Keeps `state` (a State of its own unless given one) current from `storage`."""

    def __init__(
        self,
        storage: Storage,
        *,
        state: State | None = None,
        version_check_interval: float = 5.0,
        reconnect_max_delay: float = 10.0,
        command_timeout: float = 5.0,
        fuse_after: int = FUSE_AFTER,
        on_change: ChangeListener | None = None,
        on_reset: ResetListener | None = None,
    ) -> None:
        self.storage = storage
        self.state = State() if state is None else state
        self.version_check_interval = version_check_interval
        self.reconnect_max_delay = reconnect_max_delay
        # A frozen Redis (SIGSTOP, a stalled VM) accepts connections and answers nothing: without
        # deadlines the node would wait forever and never report itself stale.
        self.command_timeout = command_timeout
        self.fuse_after = fuse_after  # for each environment's Snapshot
        self.listeners: list[ChangeListener] = [on_change] if on_change else []
        self.reset_listeners: list[ResetListener] = [on_reset] if on_reset else []
        self._wanted: set[str] = set()  # environments the version check found behind
        self._suspects: dict[str, int] = {}
        self._records: dict[str, bytes] = {}  # each environment's record as last applied
        self._warmer: asyncio.Task[None] | None = None

    # public -------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Forever: a session per Redis connection, with backoff between them."""
        attempt = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, RelayError) as e:
                self._lost(e)
            attempt = 0 if self.state.connected else attempt + 1
            self.state.connected = False
            delay = min(self.reconnect_max_delay, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
            await asyncio.sleep(delay)

    # one connection -----------------------------------------------------------------------------
    async def _session(self) -> None:
        pubsub = self.storage.pubsub()
        try:
            async with asyncio.timeout(self.command_timeout * 6):  # a full load can take a while
                await pubsub.psubscribe(self.storage.changes_pattern)
                await pubsub.subscribe(self.storage.environments_channel)
                await self._load_all()  # after subscribing, so nothing falls between the load and the stream
            state = self.state
            state.connected = True
            state.last_error = None
            for rs in state.rulesets.values():
                rs.stale_since = None
            state.loaded.set()
            checker = asyncio.create_task(self._check_versions())
            try:
                while True:
                    message = await pubsub.get_message(timeout=0.25)
                    if message is not None:
                        async with asyncio.timeout(self.command_timeout * 6):  # may resync
                            await self._handle(message)
                    if checker.done():
                        checker.result()  # re-raise its Redis error here, ending the session
                    for env in sorted(self._wanted):
                        self._wanted.discard(env)
                        async with asyncio.timeout(self.command_timeout * 6):
                            await self.resync(env)
            finally:
                checker.cancel()
        finally:
            try:
                await pubsub.aclose()
            except Exception:  # the connection may already be gone
                logger.debug("closing the pub/sub connection failed", exc_info=True)

    def _lost(self, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        state = self.state
        if state.connected or state.last_error != message:
            logger.warning("lost Redis, serving the last rulesets until it is back: %s", message)
        state.last_error = message
        now = time.time()
        for rs in state.rulesets.values():
            if rs.stale_since is None:
                rs.stale_since = now

    async def _check_versions(self) -> None:
        while True:
            await asyncio.sleep(self.version_check_interval)
            async with asyncio.timeout(self.command_timeout):
                await self._check_versions_once()

    async def _check_versions_once(self) -> None:
        rulesets = self.state.rulesets
        records = await self.storage.environments()
        envs = sorted(records)
        for env in envs:
            if env not in rulesets:
                self._wanted.add(env)
            elif records[env] != self._records.get(env):  # a record change whose message was missed (or
                self._records[env] = records[env]  # was sent by another version, on another channel)
                self._set_environment(records[env])
        missing = sorted(set(rulesets) - set(envs))
        deleted = await self.storage.deleted_environments(missing)
        for env in missing:
            if env in deleted:  # its announcement was missed: drop it now
                self._drop(env)
            else:  # gone without a deletion: Redis lost it, so keep serving what we have
                self._diverge(rulesets[env], MISSING)
        diverged = sorted(e for e, rs in rulesets.items() if rs.diverged)
        for env, epoch in (await self.storage.epochs(diverged)).items():
            if epoch != rulesets[env].epoch:  # an operator's `relay env accept`, its message missed
                self._wanted.add(env)
        versions = await self.storage.versions(envs)
        for env, version in versions.items():
            rs = rulesets.get(env)
            if rs is None or version == rs.version or rs.diverged:
                self._suspects.pop(env, None)
                continue
            # Behind twice in a row at the same version: the messages are not coming.
            if self._suspects.get(env) == rs.version:
                logger.warning("%s: at version %d but Redis has %d; resyncing", env, rs.version, version)
                self._wanted.add(env)
                self._suspects.pop(env, None)
            else:
                self._suspects[env] = rs.version

    # loading ------------------------------------------------------------------------------------
    async def _load_all(self) -> None:
        raw_envs = await self.storage.environments()
        self.state.set_environments(e for e in map(self._environment, raw_envs.values()) if e is not None)
        self._records = dict(raw_envs)
        for env in sorted(raw_envs):
            await self.resync(env)
        rulesets = self.state.rulesets
        for env in sorted(set(rulesets) - set(raw_envs)):
            # Keep serving it, with the credentials we know: only an operator can tell a lost
            # environment from a deleted one (relay has no environment deletion).
            self._diverge(rulesets[env], MISSING)

    def _diverge(self, rs: Ruleset, why: str) -> None:
        """Redis lost data this node holds: keep serving what we have, and raise the alarm."""
        if rs.diverged != why:
            logger.error(
                "%s: %s; serving this node's data (version %d) until an operator restores Redis "
                "or runs `relay env accept %s`",
                rs.env,
                why,
                rs.version,
                rs.env,
            )
        rs.diverged = why

    def _environment(self, raw: bytes) -> Environment | None:
        try:
            return Environment.from_dict(codec.loads(raw))
        except ValidationError as e:
            logger.error("ignoring a malformed environment record: %s", e)
            return None

    def _set_environment(self, raw: bytes) -> str | None:
        env = self._environment(raw)
        if env is None:
            return None
        self.state.set_environments((env,))
        self._records[env.key] = raw
        return env.key

    async def resync(self, env: str) -> list[Change]:
        """Load one environment in full and report what changed."""
        raw_flags, raw_segments, version, epoch = await self.storage.load(env)
        rulesets = self.state.rulesets
        rs = rulesets.get(env)
        if rs is None:
            rs = rulesets[env] = Ruleset(env, self.fuse_after)
            raw_env = await self.storage.environment(env)
            if raw_env is not None:
                self._set_environment(raw_env)
        new_epoch = rs.ready and epoch != rs.epoch
        if rs.ready and not new_epoch and (version < rs.version or rs.diverged):
            # Redis went backwards (restarted empty, or restored from an old backup): never wipe
            # flags to nothing on our own. Stay on this data, also if Redis's count later passes
            # ours (its items' versions would still be behind what SDKs hold), until an operator
            # starts a new epoch with `relay env accept`.
            self._diverge(rs, f"Redis is at data version {version}, behind this node's {rs.version}")
            return []
        if new_epoch:
            logger.warning("%s: new epoch in Redis; taking its data (version %d, was %d)", env, version, rs.version)
        with collector_off():  # many long-lived objects, no cycles worth collecting
            flags = self._compile_all(env, "flag", raw_flags)
            segments = self._compile_all(env, "segment", raw_segments)
            if new_epoch:  # a fresh start, not a diff against what we held
                rs.flags, rs.segments = {}, {}
            changes = rs.replace(flags, segments, version)
            rs.epoch, rs.diverged = epoch, None
        # Hundreds of thousands of long-lived compiled objects: keep the cyclic GC from walking
        # them again on every later collection (they are freed by reference counting when replaced).
        gc.freeze()
        self.state.resyncs += 1
        self._warm(rs)
        logger.info(  # live items: a deleted one's tombstone is kept (for its version), not counted
            "%s: loaded %d flags, %d segments at version %d (%d changed)",
            env,
            sum(1 for f in flags.values() if not f.deleted),
            sum(1 for s in segments.values() if not s.deleted),
            version,
            len(changes),
        )
        if new_epoch:
            self._emit_reset(env)
        elif changes:
            self._emit(env, changes)
        return changes

    def _warm(self, rs: Ruleset) -> None:
        """Compile flag bodies in the background after a load, so first evaluations find them ready."""
        if self._warmer is not None and not self._warmer.done():
            self._warmer.cancel()
        try:
            self._warmer = asyncio.get_running_loop().create_task(_compile_bodies(rs))
        except RuntimeError:  # no running loop (a synchronous caller): bodies compile on first use
            self._warmer = None

    def _compile_all(self, env: str, kind: str, raw: dict[str, bytes]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, data in raw.items():
            try:
                out[key] = compile_item(kind, data, f"{env}.{kind}s.{key}")
            except ValidationError as e:  # refused at write time, so only a hand edit gets here
                self.state.invalid_items += 1
                logger.error("%s: skipping an invalid %s in Redis: %s", env, kind, e)
        return out

    # messages -----------------------------------------------------------------------------------
    def _drop(self, env: str) -> None:
        """A deleted environment: forget it and end its streams (its SDKs reconnect, to a 401)."""
        self._wanted.discard(env)
        self._suspects.pop(env, None)
        self._records.pop(env, None)
        if self.state.drop_environment(env):
            logger.info("%s: environment deleted; dropped it and ended its streams", env)
            self._emit_reset(env)

    async def _handle(self, message: dict[str, Any]) -> None:
        channel = message["channel"].decode()
        if channel == self.storage.environments_channel:
            deleted = deleted_environment(message["data"])
            if deleted is not None:
                self._drop(deleted)
                return
            env = self._set_environment(message["data"])
            if env is not None and env not in self.state.rulesets:
                await self.resync(env)
            return
        env = self.storage.env_of_channel(channel)
        if env is None:
            return
        rs = self.state.rulesets.get(env)
        if rs is None:
            if env not in RESERVED_ENV_KEYS:  # else a channel of relay's own (P:tokens:changes), not an environment's
                await self.resync(env)
            return
        try:
            decoded = read_message(message["data"], what=channel)
        except ValidationError as e:
            logger.error("%s: unreadable change message (%s); resyncing", env, e)
            await self.resync(env)
            return
        version, kind, key = decoded.version, decoded.kind, decoded.key
        if decoded.epoch is not None:
            if decoded.epoch != rs.epoch:
                await self.resync(env)
            return
        if rs.diverged:  # pinned until a new epoch: no full reload per message meanwhile
            return
        verdict = rs.check(version)
        if verdict is Applied.DUPLICATE:
            return
        if verdict is Applied.GAP:
            logger.warning("%s: change %d arrived at version %d; resyncing", env, version, rs.version)
            await self.resync(env)
            return
        try:
            item = compile_item(kind, decoded.item, f"{env}.{kind}s.{key}")
        except (ValidationError, KeyError) as e:
            logger.error("%s: invalid item in change %d (%s); resyncing", env, version, e)
            await self.resync(env)
            return
        change = Change(env, version, kind, key, item, decoded.written_ms)
        rs.apply(change)
        self._emit(env, [change])
        if logger.isEnabledFor(logging.INFO):  # `relay serve`: "watch the node apply it", one line a change
            _log_applied(change)

    def _emit_reset(self, env: str) -> None:
        for listener in self.reset_listeners:
            try:
                listener(env)
            except Exception:
                logger.exception("reset listener failed")

    def _emit(self, env: str, changes: list[Change]) -> None:
        for listener in self.listeners:
            try:
                listener(env, changes)
            except Exception:  # one broken listener must not stop the sync loop
                logger.exception("change listener failed")
