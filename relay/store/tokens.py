"""Personal access tokens in Redis: records, the hash index, last use, changes announced, every operation audited.

Layout (prefix P):

    P:tokens              hash     token id -> TokenRecord JSON (the token's SHA-256, never the token)
    P:tokens:by-hash      hash     SHA-256 -> token id (a revoked token's stays: "revoked", not "unknown")
    P:tokens:last-used    hash     token id -> epoch seconds, written at most once a minute per token and node
    P:tokens:changes      channel  a token id, whenever that token is created, rotated or revoked
    P:tokens:audit        stream   who did what to which token, when (never a secret, nor a hash)

Issuing, rotating and revoking check the actor with relay.access.tokens; a string actor
("direct-redis:<os user>") is the break-glass path: whoever can write Redis can do anything anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from relay.access import tokens as core
from relay.access.tokens import Role, TokenRecord
from relay.errors import ConflictError, NotFoundError, ValidationError
from relay.store.storage import RedisError, Storage
from relay.wire import codec

logger = logging.getLogger(__name__)

TOUCH_EVERY = 60.0  # seconds between two last-used writes of one token by one node
_AUDIT_MAX = 100_000

# Compare-and-set of one record (ARGV[2] "": it must not exist), swapping its hash in the index, then
# audit and announce. ARGV[7..] are the audit entry's fields, name and value pairs.
_PUT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  if cur then return 0 end
  if redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1 then return -1 end
elseif cur ~= ARGV[2] then
  return 0
end
if ARGV[4] ~= ARGV[5] then
  if ARGV[4] ~= '' then redis.call('HDEL', KEYS[2], ARGV[4]) end
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local fields = {}
for j = 7, #ARGV do fields[#fields + 1] = ARGV[j] end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', unpack(fields))
redis.call('PUBLISH', KEYS[4], ARGV[1])
return 1
"""

# A token by its hash in one round trip: its id, record and last use.
_FIND = """
local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then return false end
return {redis.call('HGET', KEYS[1], id), redis.call('HGET', KEYS[3], id)}
"""

Actor = TokenRecord | str  # a token, or "direct-redis:<os user>"


def actor_fields(by: Actor) -> dict[str, str]:
    """Who, for an audit entry: a token's owner and id (via the API), or the OS user on Redis itself."""
    if isinstance(by, TokenRecord):
        return {"actor": by.name, "via": "api", "token": by.id}
    return {"actor": by, "via": "direct-redis"}


def _stored(record: TokenRecord) -> bytes:
    return codec.dumps({**replace(record, last_used=None).to_dict(), "lastUsed": None})


def _record(raw: bytes, used: bytes | None) -> TokenRecord:
    record = TokenRecord.from_dict(codec.loads(raw, what="token"))
    return replace(record, last_used=float(used)) if used else record


class TokenStore:
    """Personal access tokens of one Redis."""

    def __init__(self, storage: Storage, *, clock: Callable[[], float] = time.time, audit_max: int = _AUDIT_MAX):
        self.storage = storage
        self.clock = clock
        self.audit_max = audit_max
        p = storage.prefix
        self.records_key, self.index_key = f"{p}:tokens", f"{p}:tokens:by-hash"
        self.used_key, self.audit_key = f"{p}:tokens:last-used", f"{p}:tokens:audit"
        self.channel = storage.tokens_channel
        self._put = storage.client.register_script(_PUT)
        self._find = storage.client.register_script(_FIND)
        self._touched: dict[str, float] = {}  # token id -> when this node last wrote its last use
        self._touching: set[asyncio.Task[None]] = set()

    # reads --------------------------------------------------------------------------------------
    async def find(self, digest: str) -> TokenRecord | None:
        """The token whose SHA-256 is `digest` (revoked ones too), or None."""
        found = await self._find(keys=[self.records_key, self.index_key, self.used_key], args=[digest])
        if not found or not found[0]:
            return None
        return _record(found[0], found[1])

    async def get(self, token_id: str) -> TokenRecord:
        raw = await self._raw(token_id)
        return _record(raw, await self.storage.client.hget(self.used_key, token_id))

    async def _raw(self, token_id: str) -> bytes:
        raw: bytes | None = await self.storage.client.hget(self.records_key, token_id)
        if raw is None:
            raise NotFoundError(f'no token "{token_id}"')
        return raw

    async def records(self, ids: list[str]) -> dict[str, TokenRecord | None]:
        """These tokens as stored, without their last use (None: gone or unreadable), for caches to compare."""
        if not ids:
            return {}
        out: dict[str, TokenRecord | None] = {}
        for tid, raw in zip(ids, await self.storage.client.hmget(self.records_key, ids), strict=True):
            try:
                out[tid] = None if raw is None else _record(raw, None)
            except ValidationError:
                out[tid] = None
        return out

    async def list(self) -> list[TokenRecord]:
        """Every token, revoked and expired ones too, oldest first."""
        async with self.storage.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.records_key)
            pipe.hgetall(self.used_key)
            raw, used = await pipe.execute()
        out = []
        for tid, data in raw.items():
            try:
                out.append(_record(data, used.get(tid)))
            except ValidationError as e:  # a hand edit: show the others
                logger.error("skipping an unreadable token record %s: %s", tid.decode(), e)
        return sorted(out, key=lambda r: (r.created, r.id))

    async def audit(self, count: int = 100) -> list[dict[str, str]]:
        """Token operations, newest first."""
        entries = await self.storage.client.xrevrange(self.audit_key, count=count)
        return [{"id": i.decode(), **{k.decode(): v.decode() for k, v in f.items()}} for i, f in entries]

    # writes -------------------------------------------------------------------------------------
    async def issue(
        self, name: str, role: Role | str, envs: core.Keys, flags: core.Keys, expires: str | None, *, by: Actor
    ) -> core.Issued:
        """A new token, to show once, and its stored record. `expires`: "30d", "12h", … (None: 30 days, or the
        issuing token's own expiry if sooner: a default never asks for more than the issuer has)."""
        if role not in ("reader", "writer", "admin"):
            raise ValidationError("role", f'expected reader, writer or admin, got "{role}"')
        now = self.clock()
        until = core.parse_expiry(expires, now)
        if expires is None and isinstance(by, TokenRecord):
            until = min(until, by.expires)
        token, record = core.issue(name, Role(role), envs, flags, until, now, by)
        if not await self._write(record, b"", None, "token-create", by):
            raise ConflictError("a token with this id or hash exists already; try again")
        return token, record

    async def rotate(self, token_id: str, *, by: Actor, expires: str | None = None) -> core.Issued:
        """A new secret for the same id and scope; the old secret stops working at once."""
        raw = await self._raw(token_id)
        target, now = _record(raw, None), self.clock()
        until = None if expires is None else core.parse_expiry(expires, now)
        if isinstance(by, TokenRecord):
            token, rotated = core.rotate(by, target, now, until)
        else:  # break-glass: the checks on the target, none on the actor
            if target.revoked is not None:
                raise ValidationError("token", f"{target.id} is revoked: issue a new token instead")
            if (until := target.expires if until is None else until) <= now:
                raise ValidationError("expires", "must be in the future")
            token = core.generate()
            rotated = replace(target, hash=core.token_hash(token), expires=until)
        if not await self._write(rotated, raw, target.hash, "token-rotate", by):
            raise ConflictError(f"token {token_id} changed meanwhile; try again")
        return token, rotated

    async def revoke(self, token_id: str, *, by: Actor) -> TokenRecord:
        """Revoke a token (a no-op for one revoked already); every node refuses it within a second."""
        raw = await self._raw(token_id)
        target = _record(raw, None)
        if isinstance(by, TokenRecord):
            revoked = core.revoke(by, target, self.clock())
        else:  # break-glass
            revoked = target if target.revoked is not None else replace(target, revoked=self.clock())
        if revoked == target:
            return target
        if not await self._write(revoked, raw, target.hash, "token-revoke", by):
            raise ConflictError(f"token {token_id} changed meanwhile; try again")
        return revoked

    async def _write(self, record: TokenRecord, seen: bytes, old_hash: str | None, action: str, by: Actor) -> bool:
        entry = {
            **actor_fields(by),
            "time": str(int(self.clock() * 1000)),
            "action": action,
            "target": record.id,
            "name": record.name,
            "role": str(record.role),
            "envs": ",".join(record.envs),
            "flags": ",".join(record.flags),
            "expires": str(int(record.expires)),
        }
        args: list[Any] = [record.id, seen, _stored(record), old_hash or "", record.hash, self.audit_max]
        for name, value in entry.items():
            args += [name, value]
        keys = [self.records_key, self.index_key, self.audit_key, self.channel]
        done = await self._put(keys=keys, args=args)
        return int(done) == 1

    def touch(self, token_id: str, now: float) -> None:
        """Record that a token was used: at most once a minute per token from this node, in the background."""
        if now - self._touched.get(token_id, -TOUCH_EVERY) < TOUCH_EVERY:
            return
        if len(self._touched) > 100_000:  # bounded: forget all, costing one extra write per token
            self._touched.clear()
        self._touched[token_id] = now
        task = asyncio.get_running_loop().create_task(self._write_touch(token_id, now))
        self._touching.add(task)
        task.add_done_callback(self._touching.discard)

    async def _write_touch(self, token_id: str, now: float) -> None:
        try:
            await self.storage.client.hset(self.used_key, token_id, str(round(now, 3)))
        except (RedisError, OSError) as e:  # only the last-used time is lost
            logger.debug("could not record the last use of %s: %s", token_id, e)

    # changes ------------------------------------------------------------------------------------
    async def watch(
        self,
        on_change: Callable[[str], None],
        on_connection: Callable[[bool], None],
        stop: asyncio.Event,
        *,
        max_delay: float = 10.0,
        timeout: float = 5.0,
    ) -> None:
        """Until `stop` is set: `on_change(token id)` for each change announced; `on_connection(True)` once
        subscribed and `on_connection(False)` when Redis is lost (messages may be missed: drop what is cached).
        It ends by `stop`, within half a second, rather than by cancellation, which a pub/sub read under uvloop
        could swallow (the read's own timeout, expiring as it is cancelled, retried by redis-py)."""
        attempt = 0
        while not stop.is_set():
            pubsub = self.storage.pubsub()
            try:
                async with asyncio.timeout(timeout):
                    await pubsub.subscribe(self.channel)
                on_connection(True)
                attempt = 0
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=0.5)
                    if message is not None:
                        on_change(message["data"].decode())
            except (RedisError, OSError, TimeoutError) as e:
                on_connection(False)
                logger.warning("token changes: lost Redis (%s: %s); reconnecting", type(e).__name__, e)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # the connection may already be gone
                    logger.debug("closing the token pub/sub connection failed", exc_info=True)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(max_delay, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
        on_connection(False)


def iso(t: float | None) -> str | None:
    """Epoch seconds as RFC 3339 UTC, to the second: how the API and the CLI show a token's times."""
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def view(record: TokenRecord, now: float | None = None) -> dict[str, Any]:
    """A token as the API and the CLI show it: everything but its hash, times in RFC 3339, and its state."""
    state = "revoked" if record.revoked is not None else "live"
    if state == "live" and now is not None and now >= record.expires:
        state = "expired"
    return {
        "id": record.id, "name": record.name, "role": str(record.role), "envs": list(record.envs),
        "flags": list(record.flags), "created": iso(record.created), "expires": iso(record.expires),
        "createdBy": record.created_by, "lastUsed": iso(record.last_used), "revoked": iso(record.revoked),
        "state": state,
    }  # fmt: skip


def created_view(token: str, record: TokenRecord) -> dict[str, Any]:
    """What `tokens create --json` and `POST /api/v1/tokens` answer: the token itself, this once."""
    out = {"id": record.id, "token": token, "name": record.name, "role": str(record.role)}
    return {**out, "envs": list(record.envs), "flags": list(record.flags), "expires": iso(record.expires)}
