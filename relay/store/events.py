"""Where SDKs' analytics events go: a stream per environment, bounded in bytes, never a danger to flags.

Layout (prefix P, environment E; docs/events.md has the entries' schema):

    P:E:events          stream   one entry per batch: source, time, events (relay.wire.events, compact)
    P:E:events:bytes    string   the stream's size as relay counts it (`entry_size` of each entry)
    P:E:events:seen     zset     payload ID -> when it was stored: an SDK's retry is stored once

One Lua script appends a batch, and first trims the oldest entries until the new one fits in the
budget (`max_bytes`, `max_entries`), keeping the counter in step: Redis has no cheap size of a
stream (MEMORY USAGE samples, and costs more than the append), so relay counts what it adds and
what it trims. A stream without a counter (written before it, or the counter lost) is measured
once with MEMORY USAGE. The dedupe set holds the IDs of the last `dedupe_window_ms`, at most
`dedupe_max` of them (the newest): SDKs retry once, a second later.

When Redis is out of memory and refuses a flag or segment write, the write path frees the
oldest stored events of every environment (`free_for_write`) and writes again.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relay.runtime.logs import Throttled
from relay.store.storage import Storage
from relay.store.trouble import FAILURES, trouble

ENTRY_OVERHEAD = 48  # bytes counted per entry beyond its fields' (Redis's own bookkeeping, roughly)
DEDUPE_WINDOW_MS = 3_600_000
DEDUPE_MAX = 10_000
POOL_WAIT = 0.5  # seconds an event post waits for a free connection of its pool, then 503

# An entry's size as both scripts count it: its fields' names and values, plus ENTRY_OVERHEAD.
_SIZE = f"""
local function size(fields)
  local n = {ENTRY_OVERHEAD}
  for i = 1, #fields do n = n + #fields[i] end
  return n
end
"""

# KEYS: stream, counter, dedupe set. ARGV: payload ID, now (ms), max entries, max bytes, dedupe
# window (ms), dedupe max, source, events. Returns 1 stored, 0 a duplicate, -1 larger than the budget.
_APPEND = (
    _SIZE
    + """
local id, now = ARGV[1], tonumber(ARGV[2])
if id ~= '' then
  local seen = redis.call('ZSCORE', KEYS[3], id)
  if seen and tonumber(seen) > now - tonumber(ARGV[5]) then return 0 end
end
local fields = {'source', ARGV[7], 'time', ARGV[2], 'events', ARGV[8]}
local need = size(fields)
local max_entries, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
if need > max_bytes then return -1 end
local len = redis.call('XLEN', KEYS[1])
local total = tonumber(redis.call('GET', KEYS[2]) or '-1')
if len == 0 then
  total = 0
elseif total < 0 then
  total = redis.call('MEMORY', 'USAGE', KEYS[1]) or 0
end
-- Room first, oldest first, so the stream never passes its budget (and under maxmemory the first
-- write is a trim, which Redis allows, never the add). A few entries at a time: they may be large.
local count = 1
while len > 0 and (total + need > max_bytes or len >= max_entries) do
  local last = nil
  for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', count)) do
    if total + need <= max_bytes and len < max_entries then break end
    total, len, last = total - size(entry[2]), len - 1, entry[1]
  end
  if last == nil then len = 0 break end
  local ms, seq = string.match(last, '^(%d+)-(%d+)$')
  redis.call('XTRIM', KEYS[1], 'MINID', ms .. '-' .. (tonumber(seq) + 1))
  count = math.min(count * 2, 64)
end
if len == 0 or total < 0 then total = 0 end
redis.call('XADD', KEYS[1], '*', unpack(fields))
redis.call('SET', KEYS[2], total + need)
if id ~= '' then
  redis.call('ZADD', KEYS[3], now, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[5]))
  local n = redis.call('ZCARD', KEYS[3])
  if n > tonumber(ARGV[6]) then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, n - tonumber(ARGV[6]) - 1) end
end
return 1
"""
)

# KEYS: stream, counter, stream, counter, … of every environment; ARGV[1]: bytes to free.
# Deletes the oldest entry of all the streams until that much is freed (or none is left);
# XDEL first, which Redis allows at maxmemory, then the counters. Returns {entries, bytes}.
_FREE = (
    _SIZE
    + """
local function head(i)
  local first = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT', 1)[1]
  if not first then return nil end
  local ms, seq = string.match(first[1], '^(%d+)-(%d+)$')
  return {id = first[1], ms = tonumber(ms), seq = tonumber(seq), fields = first[2]}
end
local heads, freed, entries, touched = {}, 0, 0, {}
for i = 1, #KEYS, 2 do heads[i] = head(i) or false end
while freed < tonumber(ARGV[1]) do
  local best = nil
  for i = 1, #KEYS, 2 do
    local h = heads[i]
    if h and (best == nil or h.ms < heads[best].ms or (h.ms == heads[best].ms and h.seq < heads[best].seq)) then
      best = i
    end
  end
  if best == nil then break end
  redis.call('XDEL', KEYS[best], heads[best].id)
  local n = size(heads[best].fields)
  freed, entries, touched[best] = freed + n, entries + 1, (touched[best] or 0) + n
  heads[best] = head(best) or false
end
for i, n in pairs(touched) do
  local total = tonumber(redis.call('GET', KEYS[i + 1]) or '0') - n
  if total < 0 or not heads[i] then total = 0 end
  redis.call('SET', KEYS[i + 1], total)
end
return {entries, freed}
"""
)


def entry_size(fields: dict[bytes, bytes] | dict[str, str]) -> int:
    """An entry's size as the scripts count it (what the counter holds, summed)."""
    return ENTRY_OVERHEAD + sum(len(k) + len(v) for k, v in fields.items())


class Appended(enum.Enum):
    STORED = 1
    DUPLICATE = 0  # this payload ID was stored already: an SDK's retry
    TOO_LARGE = -1  # one batch larger than the whole budget: not stored


class EventSink:
    """Appends SDKs' batches, each environment's stream kept within `max_bytes` and `max_entries`.
    A Redis failure is raised as RedisUnavailable, after one line in `log` (at most one per
    condition every few seconds, however many requests hit it)."""

    def __init__(
        self,
        storage: Storage,
        *,
        max_entries: int,
        max_bytes: int,
        log: Throttled | None = None,
        dedupe_window_ms: int = DEDUPE_WINDOW_MS,
        dedupe_max: int = DEDUPE_MAX,
    ) -> None:
        self.storage = storage
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.log = log
        self.dedupe_window_ms = dedupe_window_ms
        self.dedupe_max = dedupe_max
        self._append = storage.client.register_script(_APPEND)

    async def append(self, env: str, *, source: str, payload_id: str, events: bytes, now_ms: int) -> Appended:
        """Store one compact batch (relay.wire.events), trimming the oldest beyond the budget."""
        key = self.storage.key
        keys = [key(env, "events"), key(env, "events:bytes"), key(env, "events:seen")]
        args: list[Any] = [payload_id, now_ms, self.max_entries, self.max_bytes, self.dedupe_window_ms]
        args += [self.dedupe_max, source, events]
        try:
            return Appended(int(await self._append(keys=keys, args=args)))
        except FAILURES as e:
            error = trouble(e, "storing events")
            if self.log is not None:
                self.log.warning(error.condition, "event post answered 503: %s: %s", error, error.detail)
            raise error from None

    async def stored_bytes(self, envs: Sequence[str]) -> dict[str, int]:
        """Each environment's stored events, in bytes as counted against the budget."""
        if not envs:
            return {}
        values = await self.storage.client.mget([self.storage.key(env, "events:bytes") for env in envs])
        return {env: int(v or 0) for env, v in zip(envs, values, strict=True)}

    async def read(self, env: str, count: int = 100) -> list[dict[str, str]]:
        """The newest `count` batches, newest first: id, source, time, events (a JSON array)."""
        entries = await self.storage.client.xrevrange(self.storage.key(env, "events"), count=count)
        return [{"id": i.decode(), **{k.decode(): v.decode() for k, v in f.items()}} for i, f in entries]


@dataclass(frozen=True, slots=True)
class Freed:
    entries: int  # batches deleted
    bytes: int  # as counted against the budget
    environments: int  # environments whose events were looked at


async def free_events(storage: Storage, need_bytes: int) -> Freed:
    """Delete stored events, oldest first across every environment, until `need_bytes` are freed."""
    envs = sorted(await storage.environments())
    keys = [k for env in envs for k in (storage.key(env, "events"), storage.key(env, "events:bytes"))]
    if not keys:
        return Freed(0, 0, 0)
    entries, freed = await storage.client.eval(_FREE, len(keys), *keys, need_bytes)
    return Freed(int(entries), int(freed), len(envs))


async def free_for_write(storage: Storage, write_bytes: int) -> Freed:
    """Room for a write Redis refused for lack of memory: what Redis is over its maxmemory, and a
    margin (twice the write, at least 1 MiB or 1% of maxmemory), taken from stored events."""
    info = await storage.client.info("memory")
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    margin = max(2 * write_bytes, 1_048_576, limit // 100)
    return await free_events(storage, max(0, used - limit) + margin)
