"""Who is asking: `Authorization: Bearer relay_pat_…`, checked against a per-node cache of token records.

The cache (token hash -> record) is trusted only while this node is subscribed to the token change channel:
each announced change drops that token, (re)subscribing or losing Redis drops everything, and every
`recheck_interval` seconds the cached records are read again (a backstop for a lost message). So revocation
reaches every node as fast as pub/sub, and expiry is checked on every request. A malformed token costs no
Redis lookup; failures count against the client's address (relay.admin.ratelimit). A token is never logged:
its id is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from relay.access.tokens import TokenRecord, check_live, constant_time_equal, looks_valid, token_hash
from relay.admin.ratelimit import FailureLimit
from relay.errors import Unauthorized
from relay.store.storage import RedisError
from relay.store.tokens import TokenStore

logger = logging.getLogger(__name__)


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (the scheme in any case, RFC 7235)."""
    if not authorization:
        raise Unauthorized("missing Authorization: Bearer <token> (a personal access token)")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("expected Authorization: Bearer <token> (a personal access token)")
    return token.strip()


class TokenAuth:
    def __init__(
        self,
        store: TokenStore,
        *,
        clock: Callable[[], float] = time.time,
        limit: FailureLimit | None = None,
        recheck_interval: float = 5.0,
        max_cached: int = 10_000,
    ) -> None:
        self.store = store
        self.clock = clock
        self.limit = limit or FailureLimit()
        self.recheck_interval = recheck_interval
        self.max_cached = max_cached
        self.trusted = False  # subscribed: the cache can be used
        self.failures = 0  # failed authentications, for /metrics
        self._cache: dict[str, TokenRecord] = {}  # token hash -> record
        self._hashes: dict[str, str] = {}  # token id -> its cached hash
        self._generation = 0  # +1 on every drop: a lookup begun before one must not cache its answer
        self._stop: asyncio.Event | None = None

    @property
    def cached(self) -> int:
        """Token records held, for /status and /metrics."""
        return len(self._cache)

    # who is asking ------------------------------------------------------------------------------
    async def authenticate(self, authorization: str | None, address: str) -> TokenRecord:
        """The live token of this request, or Unauthorized (401); RateLimited (429) while `address` is over its
        failure limit, before anything else is looked at."""
        now = self.clock()
        self.limit.check(address, now)
        try:
            record = await self._identify(authorization, now)
        except Unauthorized as e:
            self.failures += 1
            self.limit.failed(address, now)
            logger.info("admin API: authentication failed from %s: %s", address, e)
            raise
        self.store.touch(record.id, now)
        logger.debug("admin API: token %s (%s) from %s", record.id, record.name, address)
        return record

    async def _identify(self, authorization: str | None, now: float) -> TokenRecord:
        token = bearer(authorization)
        if not looks_valid(token):
            raise Unauthorized("malformed token: not a relay personal access token (relay_pat_…)")
        digest = token_hash(token)
        record = self._cache.get(digest) if self.trusted else None
        if record is None:
            generation = self._generation
            record = await self.store.find(digest)
            if record is None:
                raise Unauthorized("unknown token")
            if self.trusted and generation == self._generation:
                self._remember(digest, record)
        if not constant_time_equal(record.hash, digest):  # what was looked up is what is stored
            raise Unauthorized("unknown token")
        check_live(record, now)
        return record

    def _remember(self, digest: str, record: TokenRecord) -> None:
        if len(self._cache) >= self.max_cached:
            self._drop_all()
        self._cache[digest] = record
        self._hashes[record.id] = digest

    # keeping the cache current ------------------------------------------------------------------
    def on_change(self, token_id: str) -> None:
        self._generation += 1
        digest = self._hashes.pop(token_id, None)
        if digest is not None:
            self._cache.pop(digest, None)

    def on_connection(self, live: bool) -> None:
        self._drop_all()
        self.trusted = live

    def _drop_all(self) -> None:
        self._generation += 1
        self._cache.clear()
        self._hashes.clear()

    async def recheck(self) -> None:
        """Drop every cached token whose stored record has changed (or gone)."""
        ids, generation = list(self._hashes), self._generation
        if not ids:
            return
        current = await self.store.records(ids)
        if generation != self._generation:
            return  # dropped meanwhile: nothing cached from before to compare
        for tid, stored in current.items():
            digest = self._hashes.get(tid)
            cached = self._cache.get(digest) if digest else None
            if cached is not None and (stored is None or stored != replace(cached, last_used=None)):
                logger.info("token %s changed without an announcement; dropped from the cache", tid)
                self.on_change(tid)

    async def run(self) -> None:
        """The subscription and the periodic re-check, until `stop()` (the admin app's lifespan runs it)."""
        self._stop = stop = asyncio.Event()
        watcher = asyncio.create_task(self.store.watch(self.on_change, self.on_connection, stop))
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.recheck_interval)
                    break
                try:
                    await self.recheck()
                except (RedisError, OSError) as e:
                    logger.debug("token re-check failed: %s", e)
                if watcher.done():
                    watcher.result()
        finally:
            stop.set()
            await watcher  # it ends within half a second of `stop`, its pub/sub connection closed
            self.on_connection(False)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
