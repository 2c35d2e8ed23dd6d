"""Redis, the source of truth: key layout, the atomic write script, loading and the audit log.

The only module that imports `redis`. Layout (prefix P, default "relay"; environment E):

    P:environments            hash    E -> environment JSON (secret keys only as hashes)
    P:@environments           channel an environment JSON whenever one is created or changed;
                                      {"key": E, "deleted": true} when one is deleted ("@": never
                                      an environment's, and outside the P:*:changes pattern)
    P:environments:deleted    hash    E -> when it was deleted (until it is created again)
    P:E:flags, P:E:segments   hash    item key -> item JSON (deletes leave a versioned tombstone)
    P:E:version               string  the environment's data version, +1 on every change
    P:E:epoch                 string  the epoch of its data, new on each `relay env accept`
    P:E:history               string  when its unbroken history in Redis began (creation, or the
                                      last accept): gone after Redis lost the environment's data
    P:E:changes               channel the change message (relay.wire.changes) for every change
    P:E:audit                 stream  who / what / when / before / after, capped
    P:E:events, P:E:events:…  stream, counter, zset: SDKs' analytics events (relay.store.events)
    P:tokens…                         personal access tokens (relay.store.tokens): "tokens" is no environment
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as redis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError

from relay.config import Settings, redact_url
from relay.errors import ConflictError, UnavailableError
from relay.store.trouble import trouble
from relay.wire.changes import epoch_message

logger = logging.getLogger(__name__)

# Every write, of one item or a whole import, is this one script: check every item's version
# (optimistic concurrency), then per item: store it, bump the data version, audit, publish. ARGV
# past the items are more audit fields, name and value pairs (who wrote it: via, token, os_user).
_WRITE = """
local n = tonumber(ARGV[6])
local extra = {}
for j = 7 + n * 7, #ARGV do extra[#extra + 1] = ARGV[j] end
for i = 0, n - 1 do
  local b = 7 + i * 7
  local hash = KEYS[1]
  if ARGV[b] == 'segment' then hash = KEYS[2] end
  local cur = redis.call('HGET', hash, ARGV[b + 1])
  local v = -1
  if cur then v = cjson.decode(cur)['version'] end
  if string.format('%d', v) ~= ARGV[b + 2] then
    return {'conflict', ARGV[b + 1], string.format('%d', v)}
  end
end
local out = {'ok'}
for i = 0, n - 1 do
  local b = 7 + i * 7
  local hash = KEYS[1]
  if ARGV[b] == 'segment' then hash = KEYS[2] end
  redis.call('HSET', hash, ARGV[b + 1], ARGV[b + 3])
  local dv = redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*',
    'version', dv, 'time', ARGV[5], 'actor', ARGV[3], 'action', ARGV[b + 4], 'kind', ARGV[b],
    'key', ARGV[b + 1], 'comment', ARGV[4], 'before', ARGV[b + 5], 'after', ARGV[b + 3], unpack(extra))
  -- The change message: its data version exists only here, so the script puts it in front of
  -- the rest, which the writer encoded (relay.wire.changes: VERSION_PREFIX, message_tail).
  redis.call('PUBLISH', ARGV[1], '{"version":' .. dv .. ARGV[b + 6])
  out[#out + 1] = dv
end
return out
"""


# Compare-and-set of one environment's record, announced to every node.
_REPLACE_ENV = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[3])
return 1
"""


# A new environment: its record and its history mark together, announced to every node.
_CREATE_ENV = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('PUBLISH', KEYS[2], ARGV[2])
return 1
"""


# Delete an environment, if its record is still the one the caller read: the record, its data
# keys (KEYS[5..]), then mark it deleted (KEYS[4]: the periodic check of a node that missed the
# announcement drops it by this mark, where an environment merely missing would be kept), audit
# and announce. The audit stream stays, so the deletion can be read.
_DELETE_ENV = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[7])
for i = 5, #KEYS do redis.call('DEL', KEYS[i]) end
local extra = {}  -- how the actor was established (via, token, os_user), as field/value pairs
for j = 8, #ARGV do extra[#extra + 1] = ARGV[j] end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'version', '', 'time', ARGV[7], 'actor', ARGV[5],
  'action', 'env-delete', 'kind', 'environment', 'key', ARGV[1], 'comment', ARGV[6], 'before', '', 'after', '',
  unpack(extra))
redis.call('PUBLISH', KEYS[2], ARGV[3])
return 1
"""


@dataclass(frozen=True, slots=True)
class ItemWrite:
    kind: str  # "flag" or "segment"
    key: str
    seen_version: int  # the version the writer read (-1: absent); the write fails if it changed
    item_json: bytes  # the new item (or tombstone), version already set
    action: str  # create, update, toggle, delete, import
    before_json: bytes  # what the writer read, b"" if absent
    message_tail: bytes  # the change message after its data version (relay.wire.changes.message_tail)


def connect(
    settings: Settings, url: str | None = None, *, max_connections: int | None = None, pool_timeout: float | None = None
) -> redis.Redis:
    """A client for redis://, rediss://, unix:// or redis+sentinel://host:port,host:port/master[/db],
    with a connection pool of its own. `max_connections` bounds it (redis-py's default: 100); with
    `pool_timeout` too, a command waits that long for a free connection, then fails ("No connection
    available"); a Sentinel pool fails at once ("Too many connections")."""
    url = url or settings.redis_url
    if not url:
        raise UnavailableError("no Redis URL (the embedded Redis is started by the caller)")
    password = settings.redis_password or None
    parts = urlsplit(url)
    if parts.scheme in ("redis+sentinel", "rediss+sentinel"):
        hosts = []
        for hostport in parts.netloc.rsplit("@", 1)[-1].split(","):
            host, _, port = hostport.partition(":")
            hosts.append((host, int(port or 26379)))
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise UnavailableError(f"sentinel URL {redact_url(url)} names no master (…/mymaster)")
        db = int(path[1]) if len(path) > 1 else 0
        password = password or (unquote(parts.password) if parts.password else None)
        tls = {"ssl": True, **_tls_files(settings)} if parts.scheme == "rediss+sentinel" else {}  # both hops
        sentinel = Sentinel(hosts, sentinel_kwargs={"password": password, **tls}, password=password, db=db, **tls)
        bound = {"max_connections": max_connections} if max_connections else {}
        return sentinel.master_for(path[0], **bound)
    kwargs: dict[str, Any] = {"health_check_interval": 10}
    if password:
        kwargs["password"] = password
    if parts.scheme == "rediss":
        kwargs.update(_tls_files(settings))  # the scheme already says TLS
    if max_connections:
        kwargs["max_connections"] = max_connections
        if pool_timeout is not None:
            pool = redis.BlockingConnectionPool.from_url(url, timeout=pool_timeout, **kwargs)
            return redis.Redis.from_pool(pool)
    return redis.Redis.from_url(url, **kwargs)


def _tls_files(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if settings.redis_tls_ca_file:
        out["ssl_ca_certs"] = settings.redis_tls_ca_file
    if settings.redis_tls_cert_file:
        out["ssl_certfile"] = settings.redis_tls_cert_file
    if settings.redis_tls_key_file:
        out["ssl_keyfile"] = settings.redis_tls_key_file
    return out


class Storage:
    """Typed access to one Redis for every environment."""

    def __init__(self, client: redis.Redis, prefix: str = "relay", *, audit_max: int = 100_000) -> None:
        self.client = client
        self.prefix = prefix
        self.audit_max = audit_max
        self._write = client.register_script(_WRITE)
        self._replace_env = client.register_script(_REPLACE_ENV)
        self._create_env = client.register_script(_CREATE_ENV)
        self._delete_env = client.register_script(_DELETE_ENV)

    # keys ---------------------------------------------------------------------------------------
    def key(self, env: str, name: str) -> str:
        return f"{self.prefix}:{env}:{name}"

    @property
    def environments_key(self) -> str:
        return f"{self.prefix}:environments"

    @property
    def environments_channel(self) -> str:
        # Was P:environments:changes, an environment's channel too ("environments"); no env key has "@",
        # and outside P:*:changes, older nodes' pattern does not mistake it for an environment's either.
        return f"{self.prefix}:@environments"

    @property
    def deleted_key(self) -> str:
        """Environments deleted (`relay env delete`) and not created again: key -> when (ms)."""
        return f"{self.prefix}:environments:deleted"

    @property
    def changes_pattern(self) -> str:
        return f"{self.prefix}:*:changes"

    @property
    def tokens_channel(self) -> str:
        """Personal access tokens' changes (relay.store.tokens): matched by `changes_pattern`, but no environment's."""
        return f"{self.prefix}:tokens:changes"

    def env_of_channel(self, channel: str) -> str | None:
        """The environment of a change channel (P:E:changes; RESERVED_ENV_KEYS' are relay's own, not one's)."""
        if channel == self.environments_channel:
            return None
        return channel[len(self.prefix) + 1 : -len(":changes")]

    # reads --------------------------------------------------------------------------------------
    async def ping(self) -> None:
        await self.client.ping()

    async def environments(self) -> dict[str, bytes]:
        raw = await self.client.hgetall(self.environments_key)
        return {k.decode(): v for k, v in raw.items()}

    async def deleted_environments(self, envs: Sequence[str]) -> set[str]:
        """Which of `envs` were deleted (and not created again)."""
        if not envs:
            return set()
        marks = await self.client.hmget(self.deleted_key, list(envs))
        return {env for env, mark in zip(envs, marks, strict=True) if mark is not None}

    async def environment(self, env: str) -> bytes | None:
        return await self.client.hget(self.environments_key, env)  # type: ignore[no-any-return]

    async def load(self, env: str) -> tuple[dict[str, bytes], dict[str, bytes], int, str | None]:
        """Every flag and segment of an environment, its data version and epoch, in one consistent read."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.key(env, "flags"))
            pipe.hgetall(self.key(env, "segments"))
            pipe.get(self.key(env, "version"))
            pipe.get(self.key(env, "epoch"))
            flags, segments, version, epoch = await pipe.execute()
        return (
            {k.decode(): v for k, v in flags.items()},
            {k.decode(): v for k, v in segments.items()},
            int(version or 0),
            epoch.decode() if epoch else None,
        )

    async def epochs(self, envs: Sequence[str]) -> dict[str, str | None]:
        values = await self.client.mget([self.key(env, "epoch") for env in envs]) if envs else []
        return {env: v.decode() if v else None for env, v in zip(envs, values, strict=True)}

    async def new_epoch(self, env: str, epoch: str) -> int:
        """Start a new epoch of an environment's data: every node takes Redis's data as it is, even
        at a lower data version than it holds (after Redis lost data). Returns the data version."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.key(env, "epoch"), epoch)
            pipe.get(self.key(env, "version"))
            _, version = await pipe.execute()
        await self.client.publish(self.key(env, "changes"), epoch_message(int(version or 0), epoch))
        return int(version or 0)

    async def versions(self, envs: Sequence[str]) -> dict[str, int]:
        async with self.client.pipeline(transaction=False) as pipe:
            for env in envs:
                pipe.get(self.key(env, "version"))
            values = await pipe.execute()
        return {env: int(v or 0) for env, v in zip(envs, values, strict=True)}

    async def items(self, env: str, kind: str, keys: Sequence[str]) -> dict[str, bytes | None]:
        if not keys:
            return {}
        values = await self.client.hmget(self.key(env, f"{kind}s"), list(keys))
        return dict(zip(keys, values, strict=True))

    async def all_items(self, env: str, kind: str) -> dict[str, bytes]:
        raw = await self.client.hgetall(self.key(env, f"{kind}s"))
        return {k.decode(): v for k, v in raw.items()}

    async def audit(self, env: str, *, since_ms: int | None = None, count: int = 1000) -> list[dict[str, str]]:
        """Newest first."""
        start = f"{since_ms}-0" if since_ms else "-"
        entries = await self.client.xrevrange(self.key(env, "audit"), max="+", min=start, count=count)
        return [{"id": i.decode(), **{k.decode(): v.decode() for k, v in f.items()}} for i, f in entries]

    # writes -------------------------------------------------------------------------------------
    async def write(
        self, env: str, writes: Sequence[ItemWrite], *, actor: str, comment: str, now_ms: int,
        audit_fields: Mapping[str, str] | None = None,
    ) -> list[int]:  # fmt: skip
        """Apply all writes atomically; returns their data versions. ConflictError if any item changed;
        RedisUnavailable (relay.store.trouble) if Redis refused or failed the script: nothing written.
        `audit_fields` go into each audit entry too (how the writer was authenticated)."""
        args: list[Any] = [self.key(env, "changes"), self.audit_max, actor, comment, now_ms, len(writes)]
        for w in writes:
            args += [w.kind, w.key, str(w.seen_version), w.item_json, w.action, w.before_json, w.message_tail]
        for name, value in (audit_fields or {}).items():
            args += [name, value]
        keys = [self.key(env, "flags"), self.key(env, "segments"), self.key(env, "version"), self.key(env, "audit")]
        try:
            result = await self._write(keys=keys, args=args)
        except (RedisError, OSError) as e:
            raise trouble(e, f"writing to {env}") from None
        if result[0] == b"conflict":
            key, current = result[1].decode(), int(result[2])
            raise ConflictError(f'"{key}" changed meanwhile: it is now at version {current}')
        return [int(v) for v in result[1:]]

    async def create_environment(self, env: str, doc: bytes, *, now_ms: int = 0) -> bool:
        """Store a new environment and its history mark; False if it already exists."""
        keys = [self.environments_key, self.environments_channel, self.key(env, "history"), self.deleted_key]
        return bool(await self._create_env(keys=keys, args=[env, doc, now_ms]))

    async def delete_environment(
        self, env: str, seen: bytes, announcement: bytes, *, actor: str, comment: str, now_ms: int,
        audit_fields: Mapping[str, str] | None = None,
    ) -> bool:  # fmt: skip
        """Delete an environment's record and data keys, audit it, announce it; False (nothing
        done) if its record is no longer `seen`."""
        keys = [self.environments_key, self.environments_channel, self.key(env, "audit"), self.deleted_key]
        keys += self.environment_data_keys(env)
        args = [env, seen, announcement, self.audit_max, actor, comment, now_ms]
        args += [part for pair in (audit_fields or {}).items() for part in pair]
        return bool(await self._delete_env(keys=keys, args=args))

    def environment_data_keys(self, env: str) -> tuple[str, ...]:
        """The keys an environment's deletion removes (its audit stream stays)."""
        names = ("flags", "segments", "version", "epoch", "history", "events", "events:bytes", "events:seen")
        return tuple(self.key(env, name) for name in names)

    async def mark_history(self, env: str, now_ms: int) -> None:
        await self.client.set(self.key(env, "history"), now_ms)

    async def history_mark(self, env: str) -> bytes | None:
        return await self.client.get(self.key(env, "history"))  # type: ignore[no-any-return]

    async def first_audit_entry(self, env: str) -> dict[str, str] | None:
        entries = await self.client.xrange(self.key(env, "audit"), count=1)
        return {k.decode(): v.decode() for k, v in entries[0][1].items()} if entries else None

    async def audit_exists(self, env: str) -> bool:
        return bool(await self.client.exists(self.key(env, "audit")))

    async def replace_environment(self, env: str, seen: bytes, doc: bytes) -> None:
        """Compare-and-set an environment's document; ConflictError if it changed meanwhile."""
        if not await self._replace_env(keys=[self.environments_key, self.environments_channel], args=[env, seen, doc]):
            raise ConflictError(f'environment "{env}" changed meanwhile; try again')

    async def audit_environment(
        self, env: str, *, actor: str, action: str, comment: str, now_ms: int,
        audit_fields: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        await self.client.xadd(
            self.key(env, "audit"),
            {"version": "", "time": now_ms, "actor": actor, "action": action, "kind": "environment",
             "key": env, "comment": comment, "before": "", "after": "", **(audit_fields or {})},
            maxlen=self.audit_max,
            approximate=True,
        )  # fmt: skip

    def pubsub(self) -> Any:
        return self.client.pubsub(ignore_subscribe_messages=True)

    async def close(self) -> None:
        await self.client.aclose()
        # A Sentinel-managed client does not close its connections to the Sentinels itself.
        manager = getattr(self.client.connection_pool, "sentinel_manager", None)
        for sentinel in getattr(manager, "sentinels", ()):
            await sentinel.aclose()


def unavailable(error: Exception, url: str) -> UnavailableError:
    """A Redis failure as relay's error, with the URL's password masked."""
    return UnavailableError(f"Redis unreachable at {redact_url(url)}: {error}")


__all__ = ["ItemWrite", "RedisError", "Storage", "connect", "unavailable"]
